"""Phase two of autograde: run the hidden tests where no learner code has ever run.

``python -I -m donghaeng.grading.checker`` speaks JSON lines with :mod:`donghaeng.grading.twophase`.
It reads ``{"answers": <the submitted donghaeng_answers.json as text, or null>}`` first, then one
``{"check": {"source": …, "values": {name: literal}, "callables": [name, …]}}`` per test cell and
answers each with ``{"outputs": [<nbformat outputs>]}``.  While a test runs, each call of a learner's
function becomes ``{"call": name, "args": literal, "kwargs": literal}`` on stdout, answered on stdin
by ``{"ok": literal}`` or ``{"error": [exception name, message]}`` — the parent runs the call in the
learner's kernel.

Why a separate process: a learner's code runs in the autograde kernel with the power to change
that interpreter (input transformers that turn ``assert`` into ``pass``, patched helpers,
``sys.modules`` tricks, a rewritten answers file).  Here only trusted code runs: the test cells from
the course's gradebook and the lab's graders.  What comes from the learner's kernel is a Python
*literal* (``repr`` parsed with :func:`ast.literal_eval`: numbers, strings, tuples, lists, dicts,
sets, booleans, ``None``), so no object of the learner's — none with a forged ``__eq__`` — ever
exists here.  ``-I`` keeps the current folder and ``PYTHON*`` variables off ``sys.path``; the
process works in an empty folder of its own holding only the answers file as it was submitted.

Each test runs in a fresh namespace with the values it names; outputs are built the way IPython
reports a cell, so nbgrader's :func:`~nbgrader.utils.determine_grade` scores them as usual (an
error: zero; a number as the last expression: partial credit).  Errors carry one Korean line and no
traceback: feedback must not show the test's source.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from typing import IO, Any

from donghaeng.toolkit.answers import ANSWERS_FILE

__all__ = ["MAX_LITERAL_CHARS", "error_output", "parse_literal", "run_check"]

FAILED_CHECK = "확인을 통과하지 못했어요."
MAX_LITERAL_CHARS = 1_000_000  # one value from the learner's kernel; real answers are far smaller


class LiteralError(ValueError):
    """A value from the learner's kernel that is not a plain Python literal."""


def parse_literal(text: object) -> Any:
    """Plain data from a ``repr`` the learner's kernel produced; anything else is refused."""
    if not isinstance(text, str) or len(text) > MAX_LITERAL_CHARS:
        raise LiteralError("not a literal")
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise LiteralError("not a literal") from exc


def error_output(ename: str, message: str) -> dict[str, Any]:
    """An nbformat error output whose only traceback line is the Korean *message*."""
    return {"output_type": "error", "ename": ename, "evalue": message, "traceback": [message]}


def _stream(name: str, text: str) -> list[dict[str, Any]]:
    return [{"output_type": "stream", "name": name, "text": text}] if text else []


def _explain(exc: BaseException) -> str:
    """The Korean line a learner reads for a failed check."""
    if isinstance(exc, AssertionError):
        return str(exc) or FAILED_CHECK
    if isinstance(exc, NameError):
        name = getattr(exc, "name", None) or str(exc)
        return (f"'{name}' 값을 찾지 못했어요. 답을 쓰는 셀을 실행했는지, 이름을 똑같이 썼는지 확인해 "
                "주세요.")
    return f"답을 확인하는 중에 문제가 생겼어요 ({type(exc).__name__}). 답의 형식을 다시 확인해 주세요."


def run_check(source: str, namespace: dict[str, Any], execution_count: int = 1) -> list[dict[str, Any]]:
    """Run one test cell's *source* in *namespace*; return its nbformat outputs."""
    namespace.setdefault("__name__", "__main__")
    out, err = io.StringIO(), io.StringIO()
    result: Any = None
    failure: BaseException | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            tree = ast.parse(source)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, "<check>", "exec"), namespace)  # noqa: S102 - trusted test code
            if last is not None:
                result = eval(compile(ast.Expression(last.value), "<check>", "eval"), namespace)  # noqa: S307
        except Exception as exc:  # noqa: BLE001 - every failure is a failed check, never a crash
            failure = exc
    outputs = _stream("stdout", out.getvalue()) + _stream("stderr", err.getvalue())
    if failure is not None:
        outputs.append(error_output(type(failure).__name__, _explain(failure)))
    elif result is not None:
        outputs.append({"output_type": "execute_result", "execution_count": execution_count,
                        "data": {"text/plain": repr(result)}, "metadata": {}})
    return outputs


class _Channel:
    """JSON lines to and from the parent (the autograde worker)."""

    def __init__(self, inbox: IO[str], outbox: IO[str]) -> None:
        self.inbox, self.outbox = inbox, outbox

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.outbox.flush()

    def receive(self) -> dict[str, Any] | None:
        line = self.inbox.readline()
        return json.loads(line) if line else None


def _learner_function(channel: _Channel, name: str) -> Callable[..., Any]:
    """A stand-in that runs the learner's *name* in their kernel on literal arguments."""

    def call(*args: Any, **kwargs: Any) -> Any:
        channel.send({"call": name, "args": repr(args), "kwargs": repr(kwargs)})
        reply = channel.receive() or {"error": ["RuntimeError", "no reply"]}
        if "ok" in reply:
            return parse_literal(reply["ok"])
        ename, message = reply["error"]
        kind = getattr(builtins, str(ename), None)
        if isinstance(kind, type) and issubclass(kind, Exception):
            raise kind(message)
        raise RuntimeError(f"{ename}: {message}")

    call.__name__ = call.__qualname__ = name
    return call


def main() -> None:
    channel = _Channel(sys.stdin, os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8"))
    # What tests or libraries print goes to stderr; it cannot corrupt the channel.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    setup = channel.receive() or {}
    with tempfile.TemporaryDirectory(prefix="donghaeng-check-") as work:
        os.chdir(work)
        if isinstance(setup.get("answers"), str):
            with open(ANSWERS_FILE, "w", encoding="utf-8") as f:
                f.write(setup["answers"])
        count = 0
        while (message := channel.receive()) is not None:
            check = message["check"]
            count += 1
            namespace: dict[str, Any] = {}
            for name, literal in (check.get("values") or {}).items():
                try:
                    namespace[name] = parse_literal(literal)
                except LiteralError:
                    pass  # not plain data: the test sees the name as missing
            for name in check.get("callables") or []:
                namespace[name] = _learner_function(channel, name)
            channel.send({"outputs": run_check(check["source"], namespace, count)})


if __name__ == "__main__":
    main()
