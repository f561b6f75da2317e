"""Autograde in two phases, so that a learner's code cannot change how its answers are checked.

Stock nbgrader runs the hidden tests in the same kernel as the learner's code.  That kernel is the
learner's: one answer cell with
``get_ipython().input_transformers_cleanup.append(lambda L: ['pass\\n'] if any('assert' in l for l in L) else L)``
turned every later test into ``pass`` (full points with wrong answers), and patched helpers,
``pre_run_cell`` hooks that read the tests, ``sys.modules`` tricks or a rewritten
``donghaeng_answers.json`` are the same class of attack.

:class:`TwoPhaseExecute` keeps nbgrader's ``Execute`` preprocessor (same kernel start-up, sandbox,
timeouts, outputs of the learner's own cells) but never sends a test cell to the learner's kernel:

1. the learner's cells run in the sandboxed kernel as usual; where a test cell stands, the kernel is
   asked only for the ``repr`` of the names that test reads, parsed as Python literals (numbers,
   strings, tuples, lists, dicts, sets: an object with a forged ``__eq__`` cannot leave it);
2. the test itself runs in :mod:`donghaeng.grading.checker`, a separate Python process where no
   learner code ever runs, fed those values and the answers file *as submitted* (read from
   ``submitted/`` before the kernel started, not the copy the kernel could rewrite).  When a test
   calls a function the learner wrote, the call goes back to the learner's kernel with literal
   arguments and only a literal result returns: the kernel sees the inputs, never the assertion.

The test cells get the checker's outputs, so nbgrader's ``SaveAutoGrades``, gradebook, feedback and
formgrader work unchanged.  A learner's code can still choose its own values and results — which
is answering.  What a test can read is therefore limited to literal values and calls of functions
with literal arguments (docs/security.md).
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import resource
import select
import stat
import subprocess
import sys
from typing import Any

from jupyter_core.utils import run_sync
from nbformat import NotebookNode, from_dict
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution
from traitlets import Enum, Integer

from donghaeng.toolkit.answers import ANSWERS_FILE
from donghaeng.grading.sandbox import SandboxKernelManager, SandboxUnavailable
from donghaeng.grading.sandbox_docker import DockerKernelManager, available as docker_available
from donghaeng.common.settings import Autograde
from donghaeng.grading.checker import LiteralError, error_output, parse_literal

__all__ = ["SandboxedTwoPhaseExecute", "TwoPhaseExecute", "is_test_cell", "kernel_environment", "names_read"]

MSG_NO_DOCKER = (
    "[autograde] sandbox = \"docker\"인데 Docker 엔진이나 grader 이미지를 쓸 수 없어요. "
    "`sudo donghaeng images build grader`로 만들어 주세요. / the Docker sandbox is not available: "
    "build it with `donghaeng images build grader`.")

_MAX_ANSWERS_BYTES = 1_000_000
NOT_CHECKED = "채점 도구가 이 답을 확인하지 못했어요. 강사에게 알려 주세요."


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograder test: a graded code cell that is not the learner's answer."""
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "CREDENTIAL", "PRIVATE")


def kernel_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without JupyterHub's variables or anything named like a secret."""
    return {name: value for name, value in (os.environ if environ is None else environ).items()
            if not name.startswith("JUPYTERHUB_") and not any(w in name.upper() for w in _SECRET_WORDS)}


def names_read(source: str) -> list[str]:
    """Global names a test cell reads and does not define itself (builtins excluded)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    defined, read = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    return sorted(read - defined)


class _Checker:
    """The phase-two process of one notebook (:mod:`donghaeng.grading.checker`), over JSON lines."""

    def __init__(self, answers: str | None, memory_mb: int) -> None:
        limit = memory_mb * 1024 * 1024

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.process = subprocess.Popen(
            [sys.executable, "-I", "-m", "donghaeng.grading.checker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=limits, cwd="/",
            text=True, encoding="utf-8", bufsize=1,
        )
        self.send({"answers": answers})

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.process.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or ``None`` when the checker died or said nothing for *timeout* s."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        try:
            return json.loads(line) if line else None
        except ValueError:
            return None

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


class TwoPhaseExecute(Execute):
    """nbgrader's ``Execute`` that checks test cells in a separate, clean process (see module doc)."""

    checker_memory_mb = Integer(1024, config=True, help="Address space of the test-checking process (MiB).")

    _checker: _Checker | None = None
    _answers: str | None = None

    def preprocess(self, nb, resources=None, km=None):  # type: ignore[override]
        self._answers = self._submitted_answers(resources or {})
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self._checker is not None:
                self._checker.close()
                self._checker = None

    async def async_start_new_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
        # The learner's kernel inherits no credential: under formgrader this process holds the course
        # grader's hub token, and a kernel could print it into its feedback.
        kwargs.setdefault("env", kernel_environment())
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)  # nbclient binds its sync twin to its own

    def preprocess_cell(self, cell, resources, index):  # type: ignore[override]
        if not is_test_cell(cell):
            return super().preprocess_cell(cell, resources, index)
        # The learner's kernel never sees the test: it only says what the test's names hold now.
        values, functions = self._read_names(names_read(cell.source))
        outputs = self._check({"source": cell.source, "values": values, "callables": functions})
        cell.outputs = [from_dict(output) for output in outputs]
        cell.execution_count = None
        return cell, self.resources

    # -- phase two -------------------------------------------------------------------------------

    def _check(self, check: dict[str, Any]) -> list[dict[str, Any]]:
        """Outputs of one test in the checker; calls of the learner's functions go to the kernel."""
        if self._checker is None:
            self._checker = _Checker(self._answers, self.checker_memory_mb)
        self._checker.send({"check": check})
        wait = (self.timeout or 30) + 10
        while (message := self._checker.receive(wait)) is not None:
            if "outputs" in message:
                return message["outputs"]
            self._checker.send(self._call(message, set(check["callables"])))
        self.log.error("the test checker stopped answering; the test counts as not checked")
        self._checker.close()
        self._checker = None
        return [error_output("CheckerError", NOT_CHECKED)]

    # -- questions to the learner's kernel -------------------------------------------------------

    def _ask(self, expressions: dict[str, str]) -> dict[str, Any]:
        """``user_expressions`` replies from the learner's kernel; ``{}`` if it cannot answer."""
        if self.kc is None:
            return {}
        try:
            msg_id = self.kc.execute("", silent=True, store_history=False, allow_stdin=False,
                                     user_expressions=expressions)
            reply = self.wait_for_reply(msg_id)
        except Exception:  # noqa: BLE001 - a dead or stuck kernel has no answers to give
            self.log.warning("the kernel did not answer %s", ", ".join(expressions))
            self._interrupt()
            return {}
        return (reply or {}).get("content", {}).get("user_expressions", {}) or {}

    def _read_names(self, names: list[str]) -> tuple[dict[str, str], list[str]]:
        """Literal ``repr`` of each name's value, and the names that are functions."""
        found = self._ask({n: f"(lambda v: 'C' if callable(v) else 'V' + repr(v))({n})" for n in names})
        values, functions = {}, []
        for name in names:
            text = _text(found.get(name))
            if text.startswith("V"):
                values[name] = text[1:]
            elif text == "C":
                functions.append(name)
        return values, functions

    def _call(self, message: dict[str, Any], functions: set[str]) -> dict[str, Any]:
        """Run one call a test makes of the learner's function; the result comes back as a literal."""
        name = message.get("call")
        if name not in functions:
            return {"error": ["NameError", str(name)]}
        reply = self._ask({"r": f"repr({name}(*{message['args']}, **{message['kwargs']}))"}).get("r")
        if not reply:
            return {"error": ["TimeoutError", "함수가 제한 시간 안에 끝나지 않았어요."]}
        if reply.get("status") != "ok":
            return {"error": [str(reply.get("ename", "Exception"))[:100], str(reply.get("evalue", ""))[:1000]]}
        return {"ok": _text(reply)}

    def _interrupt(self) -> None:
        try:
            if self.km is not None:
                run_sync(self.km.interrupt_kernel)()
        except Exception:  # noqa: BLE001 - an interrupt is a courtesy for the next cell
            pass

    def _submitted_answers(self, resources: dict[str, Any]) -> str | None:
        """The answers file exactly as the learner submitted it (never the kernel's rewrite)."""
        info = resources.get("nbgrader", {})
        folders = [resources.get("metadata", {}).get("path") or "."]
        if info.get("student") and info.get("assignment"):
            coursedir = CourseDirectory(config=self.config)
            folders.insert(0, coursedir.format_path(coursedir.submitted_directory, info["student"],
                                                    info["assignment"]))
        for folder in folders:
            try:
                fd = os.open(os.path.join(folder, ANSWERS_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_ANSWERS_BYTES:
                    return None
                return f.read(_MAX_ANSWERS_BYTES).decode("utf-8", errors="replace")
        return None


def _text(expression_reply: dict[str, Any] | None) -> str:
    """The string a ``user_expressions`` entry evaluated to (its ``repr`` parsed back), or ``""``."""
    if not expression_reply or expression_reply.get("status") != "ok":
        return ""
    try:
        value = parse_literal(expression_reply.get("data", {}).get("text/plain", ""))
    except LiteralError:
        return ""
    return value if isinstance(value, str) else ""


class SandboxedTwoPhaseExecute(TwoPhaseExecute):
    """Two-phase autograde with the learner's kernel sandboxed: the autograde preprocessor of every course.

    nbgrader's ``Execute.__init__`` pins ``kernel_manager_class``; this picks it from :attr:`sandbox` (set
    per course from lab.toml's ``[autograde] sandbox``, see :func:`donghaeng.grading.courses.autograde_config`).
    """

    sandbox = Enum(["auto", "docker", "process"], default_value=Autograde().sandbox, config=True, help=(
        "Where the learner's kernel runs: 'docker' (a throw-away container of the grader image), 'process' "
        "(donghaeng.grading.sandbox's namespaces and limits) or 'auto' (docker when the engine and image are there)."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        in_docker = self.sandbox != "process" and docker_available()
        if self.sandbox == "docker" and not in_docker:
            raise SandboxUnavailable(MSG_NO_DOCKER)
        self.kernel_manager_class = DockerKernelManager if in_docker else SandboxKernelManager
