"""A grade is what the learner's answers earn, whatever their code did to the autograde kernel.

Real nbgrader, real grader account, both sandboxes: each forgery below comes with wrong answers and
must score exactly what those wrong answers earn (zero), while the same tricks beside right answers
keep full marks.  The tests run in a clean process (donghaeng.grading.twophase), so tricks that
rewrite the kernel's input, patch its error reporting, or rewrite the answers file change nothing.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from test_sandbox import ASSIGNMENT, NOTEBOOK, sandbox_course, scores

from donghaeng.grading import sandbox_docker
from donghaeng.toolkit.answers import ANSWERS_FILE
from donghaeng.grading.courses import CourseRunner
from donghaeng.grading.submissions import REASONS
from donghaeng.common.settings import REPO_ROOT

pytestmark = pytest.mark.slow

META = {"schema_version": 3, "locked": False, "task": False}
RIGHT_CHOICE, WRONG_CHOICE = "다음에 올 말을 예측해요", "사람처럼 생각해요"
CELLS = {  # grade_id: (source, points)
    "test_add": ("assert add(1, 2) == 3, '더하기를 다시 확인해 주세요.'\n"
                 "### BEGIN HIDDEN TESTS\nassert add(-1, 1) == 0\nassert add(10, 5) == 15\n### END HIDDEN TESTS", 2),
    "test_tokens": ("assert 'tokens' in globals(), 'tokens가 아직 없어요.'\n"
                    "### BEGIN HIDDEN TESTS\nassert tokens == 6, '토큰 수를 다시 세어 보세요.'\n### END HIDDEN TESTS", 2),
    "test_choice": ("from donghaeng.toolkit.answers import load_answer\nchoice = load_answer('hw1.q1')\n"
                    "assert choice is not None, '아직 저장한 답이 없어요.'\n### BEGIN HIDDEN TESTS\n"
                    f"assert choice == {RIGHT_CHOICE!r}, '본문을 다시 읽어 보세요.'\n### END HIDDEN TESTS", 2),
}
RIGHT = "def add(a, b):\n    return a + b\ntokens = 6"
WRONG = "def add(a, b):\n    return a - b\ntokens = 999"
FULL = sum(points for _, points in CELLS.values())

FORGERIES = {
    # the probe: every later cell mentioning `assert` becomes `pass`
    "transformer": "get_ipython().input_transformers_cleanup.append("
                   "lambda L: ['pass\\n'] if any('assert' in l for l in L) else L)",
    "ast_transformer": ("import ast\nclass NoAssert(ast.NodeTransformer):\n"
                        "    def visit_Assert(self, node):\n        return ast.Pass()\n"
                        "get_ipython().ast_transformers.append(NoAssert())"),
    "run_cell": ("ip = get_ipython()\n_real = ip.run_cell\n"
                 "def run_cell(raw_cell, *a, **k):\n    return _real('pass' if 'assert' in raw_cell else raw_cell, *a, **k)\n"
                 "ip.run_cell = run_cell"),
    "hide_errors": "get_ipython().showtraceback = lambda *a, **k: None\nget_ipython().showsyntaxerror = lambda *a, **k: None",
    "always_equal": ("class Always(int):\n    def __eq__(self, other):\n        return True\n"
                     "    __hash__ = int.__hash__\n"
                     "def add(a, b):\n    return Always(0)\ntokens = Always(0)"),
    "rewrite_answers": ("import json\njson.dump({'hw1.q1': " + repr(RIGHT_CHOICE) + "}, "
                        f"open({ANSWERS_FILE!r}, 'w'), ensure_ascii=False)"),
    "patch_loader": ("import donghaeng.toolkit.answers as a\na.load_answer = lambda *args, **kw: " + repr(RIGHT_CHOICE)),
    "rewrite_notebook": (f"open({NOTEBOOK + '.ipynb'!r}, 'w').write('{{\"cells\": []}}')"),
    # a value that never finishes saying what it is: the question times out, that test fails
    "stuck_repr": "class Stuck:\n    def __repr__(self):\n        while True:\n            pass\ntokens = Stuck()",
    "sys_modules": ("import sys, types\nfake = types.ModuleType('donghaeng.toolkit.answers')\n"
                    f"fake.load_answer = lambda *a, **k: {RIGHT_CHOICE!r}\nsys.modules['donghaeng.toolkit.answers'] = fake"),
}


SECRETS = [REPO_ROOT / "graders" / "rubrics" / "README.md", REPO_ROOT / "hub" / "lab.toml",
           REPO_ROOT / "assignments" / "ai-basics" / "answer-keys" / "m1-first-steps.answers.json"]
# Learner code in the grading kernel tries to read what grades it, and the course's gradebook.
PEEK = ("import os\nfor path in " + repr([str(p) for p in SECRETS]) + ":\n"
        "    try:\n        print('LEAKED', path, open(path).read()[:200])\n"
        "    except OSError as exc:\n        print('BLOCKED', path, type(exc).__name__)\n"
        "print('GRADEBOOK', os.path.exists('../../../gradebook.db'), os.path.exists('../../../source'))\n"
        "print('CREDENTIALS', sorted(k for k in os.environ if 'TOKEN' in k or k.startswith('JUPYTERHUB')))")


def integrity_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        new_markdown_cell("`add` 함수를 쓰고, 토큰 수를 `tokens`에 적고, 보기에서 답을 골라 저장해 보세요."),
        new_code_cell(f"QUESTION_OPTIONS = {[WRONG_CHOICE, RIGHT_CHOICE]!r}\nprint('보기를 하나 골라 주세요')",  # folded, as questions are
                      metadata={"jupyter": {"source_hidden": True}}),
        new_code_cell("### BEGIN SOLUTION\n" + RIGHT + "\n### END SOLUTION",
                      metadata={"nbgrader": {**META, "grade_id": "answer", "solution": True, "grade": False}}),
        *(new_code_cell(source, metadata={"nbgrader": {**META, "grade_id": grade_id, "solution": False,
                                                       "grade": True, "points": points, "locked": True}})
          for grade_id, (source, points) in CELLS.items()),
    ]
    return nb


@contextmanager
def integrity_course(**autograde: object) -> Iterator[CourseRunner]:
    """The sandbox test course with this file's notebook released instead of hw1's."""
    with sandbox_course(**autograde) as runner:
        entry = pwd.getpwnam(runner.course.grader_user)
        path = runner.root / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        nbformat.write(integrity_notebook(), path)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        runner._check("generate", "generate_assignment", ASSIGNMENT, "--force")
        yield runner


def hand_in(runner: CourseRunner, student: str, code: str, choice: str) -> None:
    """The released notebook with *code* as the answer and *choice* saved by the widget."""
    entry = pwd.getpwnam(runner.course.grader_user)
    nb = nbformat.read(runner.root / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", 4)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")).source = code
    folder = runner.root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")
    (folder / ANSWERS_FILE).write_text(json.dumps({"hw1.q1": choice}, ensure_ascii=False), encoding="utf-8")
    (folder / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    for path in (folder.parent, folder, *folder.iterdir()):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def sandboxes() -> list:
    kinds = [pytest.param("process", id="process")]
    docker = pytest.mark.skipif(not sandbox_docker.available(), reason="no Docker engine or grader image")
    return [*kinds, pytest.param("docker", id="docker", marks=docker)]


@pytest.fixture(scope="module", params=sandboxes())
def graded(request):
    if os.geteuid() != 0:
        pytest.skip("the course grader is a system account: run the suite as root")
    with integrity_course(sandbox=request.param) as runner:
        hand_in(runner, "right", RIGHT, RIGHT_CHOICE)
        hand_in(runner, "wrong", WRONG, WRONG_CHOICE)
        for name, trick in FORGERIES.items():
            hand_in(runner, f"forge-{name}", WRONG + "\n" + trick, WRONG_CHOICE)
            hand_in(runner, f"honest-{name}", RIGHT + "\n" + trick, RIGHT_CHOICE)
        hand_in(runner, "peek", RIGHT + "\n" + PEEK, RIGHT_CHOICE)
        yield runner, runner.autograde(ASSIGNMENT, force=True)


def test_forgeries_earn_nothing_beyond_the_answers(graded):
    runner, result = graded
    assert not result.failed, {s: log[-1500:] for s, log in result.failed.items()}
    got = scores(runner)
    assert got["right"] == FULL and got["wrong"] == 0
    assert {name: got[f"forge-{name}"] for name in FORGERIES} == {name: 0 for name in FORGERIES}


def test_right_answers_keep_full_marks_whatever_else_the_code_did(graded):
    runner, _result = graded
    got = scores(runner)
    # always_equal replaces the right add and tokens by forged objects (only the saved choice still
    # counts); stuck_repr replaces tokens by an object that never says its value
    expected = {name: FULL for name in FORGERIES}
    expected["always_equal"] = CELLS["test_choice"][1]
    expected["stuck_repr"] = FULL - CELLS["test_tokens"][1]
    assert {name: got[f"honest-{name}"] for name in FORGERIES} == expected


def test_an_untouched_submission_raises_no_tampering_alarm(graded):
    _runner, result = graded
    for student in ("right", "wrong"):
        assert REASONS["locked_changed"] not in result.outcomes[student].reasons, result.outcomes[student].reasons


def test_graded_notebook_says_why_in_korean_and_feedback_hides_the_tests(graded):
    runner, _result = graded
    runner._check("feedback", "generate_feedback", ASSIGNMENT, "--force")
    nb = nbformat.read(runner.root / "autograded" / "wrong" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", 4)
    errors = {c.metadata.nbgrader["grade_id"]: o for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "error"}
    assert errors["test_tokens"].evalue == "토큰 수를 다시 세어 보세요."
    assert errors["test_choice"].evalue == "본문을 다시 읽어 보세요."
    assert all(len(o.traceback) == 1 for o in errors.values()), "one Korean line, no Python traceback"
    html = (runner.root / "feedback" / "wrong" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text(encoding="utf-8")
    assert "토큰 수를 다시 세어 보세요." in html
    for secret in ("add(10, 5) == 15", "tokens == 6", RIGHT_CHOICE, "Traceback (most recent call last)"):
        assert secret not in html, secret
    assert "확인 코드는 보여 드리지 않아요" in html
    assert "QUESTION_OPTIONS" not in html and "보기를 하나 골라 주세요" in html, "folded code left out, output kept"


def test_learner_code_cannot_read_what_grades_it(graded):
    runner, _result = graded
    assert scores(runner)["peek"] == FULL
    nb = nbformat.read(runner.root / "autograded" / "peek" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", 4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert printed.count("BLOCKED") == len(SECRETS) and "LEAKED" not in printed, printed
    assert "GRADEBOOK False False" in printed, printed  # the course folder is hidden from the kernel


def test_a_grader_token_never_reaches_the_learners_kernel(graded):
    """Autograde from formgrader runs with the course grader's hub token in its environment."""
    runner, _result = graded
    token = "grader-hub-token-" + os.urandom(8).hex()
    graded_run = runner.nbgrader("autograde", ASSIGNMENT, "--student", "peek", "--force",
                                 env={"JUPYTERHUB_API_TOKEN": token, "JPY_API_TOKEN": token})
    assert graded_run.returncode == 0, graded_run.stdout + graded_run.stderr
    nb = (runner.root / "autograded" / "peek" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text(encoding="utf-8")
    assert token not in nb and "CREDENTIALS []" in nb


def test_submitted_answers_file_is_never_rewritten_by_grading(graded):
    runner, _result = graded
    folder: Path = runner.root / "submitted" / "forge-rewrite_answers" / ASSIGNMENT
    assert json.loads((folder / ANSWERS_FILE).read_text(encoding="utf-8")) == {"hw1.q1": WRONG_CHOICE}
