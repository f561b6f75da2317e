"""Bad and hostile submissions that test_sandbox.py does not cover: each scores zero with a reason.

The course is the same throw-away nbgrader course as in test_sandbox.py (real nbgrader, real grader
account, sandboxed kernels).  Every bad input must end as a zero in the gradebook with a Korean
reason in the trainer's summary table, leave the learner's files where they were, and not disturb
the correct submission graded beside it.  A killed autograde run resumes where it stopped, and two
courses are graded at once without either seeing the other.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from rich.console import Console
from test_sandbox import ASSIGNMENT, NORMAL, NOTEBOOK, autograded_text, sandbox_course, scores, submit

from donghaeng.cli.app import _autograde_table
from donghaeng.grading.courses import CourseRunner
from donghaeng.grading.submissions import REASONS

pytestmark = pytest.mark.slow
GOOD = NORMAL["good1"]
# The namespaced-process sandbox (it hides /home and the lab's data); test_container_sandbox.py covers Docker.
PROCESS = {"sandbox": "process"}
WRONG = NORMAL["wrong"]


@pytest.fixture(scope="module")
def course():
    if os.geteuid() != 0:
        pytest.skip("the course grader is a system account: run the suite as root")
    with sandbox_course(max_submission_mb=20, **PROCESS) as runner:
        yield runner


def folder(runner: CourseRunner, student: str) -> Path:
    return runner.root / "submitted" / student / ASSIGNMENT


def own(runner: CourseRunner, student: str) -> None:
    """Hand a hand-made submission to the grader account, as nbgrader collect leaves it."""
    entry = pwd.getpwnam(runner.course.grader_user)
    for path in [folder(runner, student).parent, *folder(runner, student).parent.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def edit_submitted(runner: CourseRunner, student: str, change) -> None:
    """Let *change* edit the learner's notebook (cells, metadata) like a learner's editor could."""
    path = folder(runner, student) / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(path, 4)
    change(nb)
    nbformat.write(nb, path)


def grade_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add")


def forge_checksum(nb: nbformat.NotebookNode) -> None:
    """Replace the test with `pass` and write the checksum nbgrader would compute for it, 100 points."""
    from nbgrader.utils import compute_checksum

    cell = grade_cell(nb)
    cell.source = "pass"
    cell.metadata.nbgrader["points"] = 100
    cell.metadata.nbgrader["checksum"] = compute_checksum(cell)


@pytest.fixture(scope="module")
def graded(course: CourseRunner):
    """Every bad submission of this file, plus one correct one, graded in one autograde run."""
    victim_home = Path(f"/home/dh-victim-{secrets.token_hex(3)}")
    victim_home.mkdir(mode=0o755)
    (victim_home / "secret.txt").write_text("다른 학습자의 비밀", encoding="utf-8")
    (victim_home / "secret.txt").chmod(0o644)  # readable by anyone: only the sandbox hides it
    big_print = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\nadd = None"
    submit(course, {
        "good": GOOD,
        "bigprint": big_print,
        "otherhome": f"print(open('{victim_home}/secret.txt').read())\n" + GOOD,
        "delete_locked": WRONG, "edit_locked": WRONG, "checksum": WRONG,
        "wrongname": GOOD, "badjson": GOOD, "emptyfile": GOOD, "nothing": GOOD, "huge": GOOD,
    })
    edit_submitted(course, "delete_locked", lambda nb: nb.cells.remove(grade_cell(nb)))
    edit_submitted(course, "edit_locked", lambda nb: setattr(grade_cell(nb), "source", "pass"))
    edit_submitted(course, "checksum", forge_checksum)
    (folder(course, "wrongname") / f"{NOTEBOOK}.ipynb").rename(folder(course, "wrongname") / "과제1.ipynb")
    (folder(course, "badjson") / f"{NOTEBOOK}.ipynb").write_text('{"cells": [', encoding="utf-8")
    (folder(course, "emptyfile") / f"{NOTEBOOK}.ipynb").write_bytes(b"")
    (folder(course, "nothing") / f"{NOTEBOOK}.ipynb").unlink()
    with open(folder(course, "huge") / "data.bin", "wb") as f:  # 200 MB, sparse: made at once
        f.truncate(200 * 2**20)
    for student in ("wrongname", "badjson", "emptyfile", "nothing", "huge"):
        own(course, student)
    before = {p: p.stat().st_size for p in (course.root / "submitted").rglob("*") if p.is_file()}
    try:
        result = course.autograde(ASSIGNMENT, force=True)
        yield course, result, before, victim_home
    finally:
        shutil.rmtree(victim_home, ignore_errors=True)


EXPECTED = {  # student: words of the reason in the summary
    "bigprint": (REASONS["memory"], REASONS["output"]),
    "otherhome": ("No such file or directory",),
    "delete_locked": (REASONS["cell_restored"],),
    "edit_locked": (REASONS["locked_changed"],),
    "checksum": (REASONS["locked_changed"],),
    "wrongname": ("노트북 이름이 달라요", "과제1.ipynb", f"{NOTEBOOK}.ipynb"),
    "badjson": ("파일이 올바른 노트북 형식이 아니에요",),
    "emptyfile": (REASONS["empty"],),
    "nothing": (REASONS["empty"],),
    "huge": ("제출물이 너무 커요", "200 MB", "한도 20 MB"),
}


def test_each_bad_submission_scores_zero_with_its_reason(graded):
    course, result, _before, _victim = graded
    assert not result.failed, {s: log[-1500:] for s, log in result.failed.items()}
    got = scores(course)
    assert got["good"] == 2, "graded beside the bad ones, the correct answer keeps full marks"
    assert {s: got.get(s) for s in EXPECTED} == {s: 0 for s in EXPECTED}, "zero in the gradebook, for each"
    for student, words in EXPECTED.items():
        reasons = " ".join(result.outcomes[student].reasons)
        if student == "bigprint":
            assert any(w in reasons for w in words), reasons
        else:
            assert all(w in reasons for w in words), (student, reasons)
    assert {s for s, o in result.outcomes.items() if o.status == "refused"} == {
        "wrongname", "badjson", "emptyfile", "nothing", "huge"}, "refused before nbgrader saw them"
    assert not (course.root / "autograded" / "huge").exists(), "the 200 MB were never copied"


def test_summary_table_is_korean_and_names_every_reason(graded):
    _course, result, _before, _victim = graded
    console = Console(record=True, width=240)
    console.print(_autograde_table("hw1 자동 채점 결과", result))
    text = console.export_text()
    for header in ("학습자", "점수/만점", "상태", "이유"):
        assert header in text
    assert "2/2" in text and "채점했어요" in text and "채점 전에 0점" in text
    for student in EXPECTED:
        row = next(line for line in text.splitlines() if f" {student} " in line)
        assert "0/2" in row, row
    assert "제출물이 너무 커요" in text and "잠긴 셀이 바뀌었어요(체크섬)" in text


def test_nothing_else_was_harmed(graded):
    course, _result, before, victim = graded
    after = {p: p.stat().st_size for p in (course.root / "submitted").rglob("*") if p.is_file()}
    assert after == before, "every submitted file is kept as it was (nothing lost)"
    assert (victim / "secret.txt").read_text(encoding="utf-8") == "다른 학습자의 비밀"
    assert "다른 학습자의 비밀" not in autograded_text(course, "otherhome")
    home = Path(pwd.getpwnam(course.course.grader_user).pw_dir)
    assert (home / "keep.txt").read_text(encoding="utf-8") == "grader's own file"
    # the 1 GB of output never reached the graded notebook (the feedback page stays small)
    assert (course.root / "autograded" / "bigprint" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").stat().st_size < 2**20
    left = os.popen(f"pgrep -u {course.course.grader_user}").read().split()
    assert not left, left


def test_a_deleted_test_cell_is_put_back_so_a_correct_answer_still_counts(course: CourseRunner):
    submit(course, {"delete_good": GOOD})
    edit_submitted(course, "delete_good", lambda nb: nb.cells.remove(grade_cell(nb)))
    result = course.autograde(ASSIGNMENT)
    assert result.ok == ["delete_good"]
    assert scores(course)["delete_good"] == 2
    assert REASONS["cell_restored"] in result.outcomes["delete_good"].reasons


# ------------------------------------------------------------------------------ resumable
def settings_file(runner: CourseRunner, path: Path) -> Path:
    """The lab.toml of the throw-away course, for the real `donghaeng course autograde` command."""
    lab, autograde = runner.settings.lab, runner.settings.autograde
    course = runner.course
    path.write_text(
        f'[lab]\ndata_dir = "{lab.data_dir}"\n[autograde]\ntimeout = {autograde.timeout}\n'
        f"memory_mb = {autograde.memory_mb}\nprocesses = {autograde.processes}\n"
        f'workers = 1\nsandbox = "{autograde.sandbox}"\n\n'
        f'[[courses]]\nid = "{course.id}"\ntitle = "{course.title}"\nassignments = "{course.assignments}"\n',
        encoding="utf-8")
    return path


def records(runner: CourseRunner) -> set[str]:
    return {p.stem for p in (runner.root / ".donghaeng" / "autograde" / ASSIGNMENT).glob("*.json")}


def test_a_killed_autograde_resumes_with_only_what_is_missing(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the course grader is a system account: run the suite as root")
    subs = {f"r{i}": (GOOD if i % 2 == 0 else WRONG) for i in range(6)}
    with sandbox_course(workers=1, **PROCESS) as runner:
        submit(runner, subs)
        command = [sys.executable, "-m", "donghaeng", "course", "autograde", runner.course.id, ASSIGNMENT,
                   "--settings", str(settings_file(runner, tmp_path / "lab.toml"))]
        env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
        cli = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while len(records(runner)) < 2 and cli.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            os.killpg(cli.pid, signal.SIGKILL)  # the command, its nbgrader runs and their kernels
            cli.wait()
        done = records(runner)
        assert 2 <= len(done) < len(subs), "killed midway"

        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        rows = {line.split()[1]: line for line in again.stdout.splitlines() if line.startswith("│ r")}
        assert sorted(rows) == sorted(subs), again.stdout
        assert {s for s, row in rows.items() if "그대로예요(이미 채점)" in row} == done, again.stdout
        assert {s for s, row in rows.items() if "채점했어요" in row} == set(subs) - done
        assert records(runner) == set(subs)
        expected = {s: 2 if answer == GOOD else 0 for s, answer in subs.items()}
        assert scores(runner) == expected, "the same scores as one uninterrupted run"
        for student, points in expected.items():
            assert f" {points}/2 " in rows[student], rows[student]
        assert "확인을 통과하지 못했어요" in rows["r1"], "every zero has its reason in the table"


# ------------------------------------------------------------------------------ two courses at once
def test_two_courses_grade_at_once_and_cannot_see_each_other():
    if os.geteuid() != 0:
        pytest.skip("the course grader is a system account: run the suite as root")
    with sandbox_course(workers=1, **PROCESS) as first, sandbox_course(workers=1, **PROCESS) as second:
        def snoop(other: CourseRunner) -> str:
            return (f"for p in ['{other.root}/gradebook.db', '{other.root}/source/{ASSIGNMENT}/{NOTEBOOK}.ipynb']:\n"
                    "    try:\n        print('읽음', len(open(p, 'rb').read()))\n"
                    "    except OSError as e:\n        print('막힘', type(e).__name__)\n" + GOOD)

        submit(first, {"good": GOOD, "snoop": snoop(second)})
        submit(second, {"good": GOOD, "snoop": snoop(first)})
        results = {}
        threads = [threading.Thread(target=lambda r=r: results.__setitem__(r.course.id, r.autograde(ASSIGNMENT)))
                   for r in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for runner in (first, second):
            assert not results[runner.course.id].failed
            assert scores(runner) == {"good": 2, "snoop": 2}
            text = autograded_text(runner, "snoop")
            assert "읽음" not in text and text.count("막힘") == 2, text


def grading_workers(runner: CourseRunner) -> list[int]:
    found = subprocess.run(["pgrep", "-u", runner.course.grader_user, "-f", "donghaeng.grading.worker"],
                           capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_a_grading_process_that_dies_is_replaced_and_no_submission_is_lost():
    if os.geteuid() != 0:
        pytest.skip("the course grader is a system account: run the suite as root")
    subs = {f"w{i}": (GOOD if i % 2 == 0 else WRONG) for i in range(4)}
    with sandbox_course(workers=1, **PROCESS) as runner:
        submit(runner, subs)
        with ThreadPoolExecutor(1) as pool:
            grading = pool.submit(runner.autograde, ASSIGNMENT)
            deadline = time.monotonic() + 300
            while not (workers := grading_workers(runner)) and not grading.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert workers, "a grading process was started"
            time.sleep(1.5)  # in the middle of a submission (or between two)
            os.kill(workers[0], signal.SIGKILL)
            result = grading.result(timeout=600)
        assert result.ok == sorted(subs) and not result.failed, (result.failed, result.refused)
        assert scores(runner) == {s: 2 if answer == GOOD else 0 for s, answer in subs.items()}
        assert records(runner) == set(subs)
