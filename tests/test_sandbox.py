"""Autograde runs learners' code in a sandbox, several submissions at once, on real nbgrader.

One throw-away course (its own data folder and grader account ``grader-sbx-…``) is prepared by
``CourseRunner`` as ``donghaeng up`` does; hand-made submissions are put in ``submitted/`` and graded by
``CourseRunner.autograde`` (nbgrader's own ``autograde`` app, run as the grader account, with
``graders/nbgrader_config.py``'s sandboxed kernels).  Hostile submissions must each get zero without
hurting anyone else, the grader's home or the course folder.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.api import Gradebook

from donghaeng.common.accounts import remove_system_user
from donghaeng.grading.courses import CourseRunner
from donghaeng.deploy.jupyter_config import write_shared_config
from donghaeng.common.settings import Autograde, Course, Lab, Settings

pytestmark = pytest.mark.slow
ASSIGNMENT, NOTEBOOK = "hw1", "hw1"

SOLUTION = "### BEGIN SOLUTION\ndef add(a, b):\n    return a + b\n### END SOLUTION"
TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0"

HOSTILE = {
    "loop": "while True:\n    pass\ndef add(a, b):\n    return a + b",
    "forkbomb": ("import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n"
                 "def add(a, b):\n    return a + b"),
    "membomb": "hog = []\nwhile True:\n    hog.append(bytearray(64 * 1024 * 1024))\ndef add(a, b):\n    return a + b",
    "output": "for i in range(200000):\n    print('출력', i, 'x' * 50)\nadd = None",
    "network": ("import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=3)\n"
                "def add(a, b):\n    return a + b"),
    "shadow": "secret = open('/etc/shadow').read()\ndef add(a, b):\n    return a + b",
    "rmrf": ("import os, glob\nos.system('rm -rf ~ ~/.??* ../../../* ../../../.??* /home/*')\n"
             "print(os.listdir('../../..'), os.listdir(os.path.expanduser('~')))\nadd = None"),
}
NORMAL = {
    "good1": "def add(a, b):\n    return a + b",
    "good2": "def add(a, b):\n    return sum([a, b])",
    "wrong": "def add(a, b):\n    return a - b",
    "half": "def add(a, b):\n    return a + b if a > 0 else 7",
    "broken": "def add(a, b)\n    return a + b",
    "empty": "# 여기에 답을 써 주세요\nraise NotImplementedError()",
}


def source_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    meta = {"schema_version": 3, "locked": False, "task": False}
    nb.cells = [
        new_markdown_cell("두 수를 더하는 함수 `add`를 써 보세요."),
        new_code_cell(SOLUTION, metadata={"nbgrader": {**meta, "grade_id": "answer", "solution": True,
                                                         "grade": False}}),
        new_code_cell(TESTS, metadata={"nbgrader": {**meta, "grade_id": "test_add", "solution": False,
                                                      "grade": True, "points": 2, "locked": True}}),
    ]
    return nb


@contextmanager
def sandbox_course(workers: int = 2, **autograde: object) -> Iterator[CourseRunner]:
    """A prepared throw-away course with one released assignment (``hw1``); removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="donghaeng-sandbox-", dir="/var/tmp"))
    base.chmod(0o755)
    source = base / "assignments" / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    nbformat.write(source_notebook(), source / f"{NOTEBOOK}.ipynb")
    course = Course(id=f"sbx-{secrets.token_hex(3)}", title="격리 채점", assignments=str(base / "assignments"))
    settings = Settings(
        lab=Lab(data_dir=base / "data"),
        autograde=Autograde(**{"timeout": 5, "memory_mb": 1024, "processes": 48, "workers": workers, **autograde}),
        courses=[course],
    )
    settings.paths.root.mkdir()
    settings.paths.root.chmod(0o755)
    write_shared_config(settings)
    runner = CourseRunner(settings, course)
    try:
        runner.prepare()
        runner._check("generate", "generate_assignment", ASSIGNMENT, "--force")
        home = Path(pwd.getpwnam(course.grader_user).pw_dir)
        (home / "keep.txt").write_text("grader's own file", encoding="utf-8")
        yield runner
    finally:
        remove_system_user(course.grader_user, settings.lab.learner_group)
        if not os.environ.get("DONGHAENG_KEEP_TEST_DIRS"):
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def course():
    if os.geteuid() != 0:
        pytest.skip("the course grader is a system account: run the suite as root")
    with sandbox_course(sandbox="process") as runner:
        yield runner


def submit(runner: CourseRunner, submissions: dict[str, str]) -> None:
    """Put each learner's notebook (the release copy with their answer) into submitted/."""
    entry = pwd.getpwnam(runner.course.grader_user)
    release = nbformat.read(runner.root / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", 4)
    for student, answer in submissions.items():
        nb = nbformat.from_dict(release)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = answer
        folder = runner.root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")
        (folder / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
        for path in (folder.parent.parent, folder.parent, folder, *folder.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)


def scores(runner: CourseRunner) -> dict[str, float]:
    with Gradebook(f"sqlite:///{runner.root / 'gradebook.db'}", course_id=runner.course.id) as gb:
        return {s.student.id: s.code_score for s in gb.assignment_submissions(ASSIGNMENT)}


def autograded_text(runner: CourseRunner, student: str, streams_only: bool = False) -> str:
    nb = nbformat.read(runner.root / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb", 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    if streams_only:
        return "".join(o.text for o in cell.outputs if o.output_type == "stream")
    return "\n".join(o.get("text", "") + o.get("ename", "") + o.get("evalue", "") for o in cell.outputs)


def test_hostile_submissions_get_zero_and_hurt_no_one(course: CourseRunner):
    submit(course, {**HOSTILE, "good1": NORMAL["good1"], "good2": NORMAL["good2"]})
    steps: list[str] = []
    result = course.autograde(ASSIGNMENT, on_step=steps.append, force=True)
    assert not result.failed, {s: log[-1500:] for s, log in result.failed.items()}
    assert sorted(steps) == sorted([*HOSTILE, "good1", "good2"])
    got = scores(course)
    assert got["good1"] == got["good2"] == 2  # graded side by side with the hostile ones
    assert {s: got[s] for s in HOSTILE} == {s: 0 for s in HOSTILE}

    assert "CellTimeoutError" in autograded_text(course, "loop") or "KeyboardInterrupt" in autograded_text(
        course, "loop")
    assert "BlockingIOError" in autograded_text(course, "forkbomb")  # RLIMIT_NPROC
    assert "MemoryError" in autograded_text(course, "membomb")  # RLIMIT_AS
    out = autograded_text(course, "output", streams_only=True)
    assert "Output truncated" in out and len(out.splitlines()) <= 1001
    net = autograded_text(course, "network")
    assert "URLError" in net and "unreachable" in net.lower()
    assert "PermissionError" in autograded_text(course, "shadow")
    # the trainer's summary says why each one got zero
    reasons = {s: " ".join(result.outcomes[s].reasons) for s in HOSTILE}
    assert "시간 초과" in reasons["loop"]
    assert "프로세스를 너무 많이" in reasons["forkbomb"]
    assert "메모리 초과" in reasons["membomb"]
    assert "출력이 너무 길어서" in reasons["output"]
    assert "네트워크" in reasons["network"]
    assert "허락되지 않은 파일" in reasons["shadow"]
    assert "확인을 통과하지 못했어요" in reasons["rmrf"]
    assert all(result.outcomes[s].status == "graded" for s in HOSTILE)

    # rm -rf ~ and the course folder: only the sandbox's empty tmpfs copies were touched
    home = Path(pwd.getpwnam(course.course.grader_user).pw_dir)
    assert (home / "keep.txt").read_text(encoding="utf-8") == "grader's own file"
    for path in ("gradebook.db", "source", "release", "nbgrader_config.py", f"submitted/rmrf/{ASSIGNMENT}"):
        assert (course.root / path).exists(), path
    assert "gradebook.db" not in autograded_text(course, "rmrf")  # the kernel never saw the course folder

    # nothing of the sandboxes is left running
    left = os.popen(f"pgrep -u {course.course.grader_user}").read().split()
    assert not left, left


def test_regrading_skips_unchanged_submissions(course: CourseRunner):
    submit(course, {"good1": NORMAL["good1"]})
    result = course.autograde(ASSIGNMENT)  # everything else is already graded and unchanged
    assert result.ok == ["good1"] and "loop" in result.skipped and not result.failed


def test_parallel_gives_the_same_scores_as_sequential(course: CourseRunner):
    for student in HOSTILE:  # keep this comparison short: the hostile ones were graded above
        shutil.rmtree(course.root / "submitted" / student)
    submit(course, NORMAL)
    sequential = course.autograde(ASSIGNMENT, force=True, workers=1)
    first = scores(course)
    parallel = course.autograde(ASSIGNMENT, force=True, workers=2)
    second = scores(course)
    assert sequential.ok == parallel.ok and sequential.failed.keys() == parallel.failed.keys()
    assert {s: first[s] for s in NORMAL} == {s: second[s] for s in NORMAL}
    assert {s: second[s] for s in NORMAL} == {"good1": 2, "good2": 2, "wrong": 0, "half": 0, "broken": 0,
                                              "empty": 0}
