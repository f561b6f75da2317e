"""Kernels graded side by side share nothing, and a kernel that cannot be isolated is not started.

Real nbgrader, real grader account, real sandboxed kernels (the course of test_sandbox.py).  Two
submissions are graded at the same time by two workers: one leaves files in ``/tmp``, ``/var/tmp`` and
``/dev/shm``; the other looks for them and, handed the host paths of every grading kernel's connection
file (their HMAC keys would let it run code in the other kernel), tries to open them.

Fail closed: autograde runs in a user namespace whose ``user.max_user_namespaces`` is 0, a real kernel
limit under which the launcher's ``unshare`` fails as it does on a host with user namespaces off.  The
kernel is refused, the summary gives the admin's fix, and the submission's code never runs — unless
the admin opts out with ``SandboxKernelManager.require_isolation = False``.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_sandbox import (  # noqa: F401 - course is a fixture
    ASSIGNMENT, NORMAL, NOTEBOOK, autograded_text, course, scores, submit,
)

from donghaeng.grading.courses import CourseRunner, Outcome

pytestmark = pytest.mark.slow
PEEKED = ("/tmp", "/var/tmp", "/dev/shm")
ADD = "def add(a, b):\n    return a + b"
# Each prints one JSON line: the time it was running, and what it wrote or found.
WRITER = f"""\
import json, os, time
start, wrote = time.time(), []
for folder in {PEEKED!r}:
    try:
        with open(os.path.join(folder, 'writer-secret.txt'), 'w') as f:
            f.write('secret')
        wrote.append(folder)
    except OSError:
        pass
time.sleep(3.5)
print(json.dumps({{'start': start, 'end': time.time(), 'wrote': wrote}}))
{ADD}"""
READER = f"""\
import json, os, stat, time
from ipykernel import get_connection_file
mine = os.path.realpath(get_connection_file())
start, seen, opened, refused = time.time(), set(), [], set()
while time.time() - start < 3.5:
    for folder in {PEEKED!r}:
        for root, _dirs, files in os.walk(folder):
            seen.update(os.path.join(root, name) for name in files)
    try:
        with open('targets.txt') as f:
            targets = f.read().split()
    except OSError:
        targets = []
    for target in targets:
        if os.path.realpath(target) != mine and target not in opened:
            try:
                with open(target) as f:
                    json.load(f)['key']
                opened.append(target)
            except OSError as e:
                refused.add(type(e).__name__)
    time.sleep(0.2)
print(json.dumps({{'start': start, 'end': time.time(), 'mine': mine, 'seen': sorted(seen), 'opened': opened,
                  'refused': sorted(refused), 'tried': len(set(targets) - {{mine}}),
                  'mode': oct(stat.S_IMODE(os.stat(os.path.dirname(mine)).st_mode))}}))
{ADD}"""


def report(runner: CourseRunner, student: str) -> dict:
    return json.loads(autograded_text(runner, student, streams_only=True).strip().splitlines()[-1])


def kernel_connection_files(runner: CourseRunner) -> list[str]:
    """Host paths of the connection files of this course's grading kernels (as root sees them)."""
    uid = pwd.getpwnam(runner.course.grader_user).pw_uid
    return sorted(p for p in glob.glob("/tmp/donghaeng-kernel-*/kernel.json") if os.stat(p).st_uid == uid)


def peek_at_each_other(runner: CourseRunner) -> tuple[dict, dict]:
    """Grade WRITER and READER at once; while they run, hand READER every kernel's connection file."""
    submit(runner, {"reader": READER, "writer": WRITER})
    reader_work = runner.root / "autograded" / "reader" / ASSIGNMENT
    entry = pwd.getpwnam(runner.course.grader_user)
    done = threading.Event()

    def hand_over() -> None:
        while not done.wait(0.1):
            if reader_work.is_dir() and (found := kernel_connection_files(runner)):
                targets = reader_work / "targets.txt"
                targets.write_text("\n".join(found), encoding="utf-8")
                os.chown(targets, entry.pw_uid, entry.pw_gid)  # nbgrader sets the modes of its files

    spy = threading.Thread(target=hand_over)
    spy.start()
    try:
        result = runner.autograde(ASSIGNMENT, force=True, workers=2)
    finally:
        done.set()
        spy.join()
    assert not result.failed, {s: log[-1500:] for s, log in result.failed.items()}
    assert scores(runner) == {"reader": 2, "writer": 2}
    reader, writer = report(runner, "reader"), report(runner, "writer")
    assert reader["start"] < writer["end"] and writer["start"] < reader["end"], "not graded at the same time"
    return reader, writer


def test_kernels_graded_together_see_none_of_each_others_files(course: CourseRunner):
    reader, writer = peek_at_each_other(course)
    assert writer["wrote"] == list(PEEKED)  # each kernel has a private, writable /tmp, /var/tmp, /dev/shm
    assert not [p for p in reader["seen"] if "writer" in p], reader["seen"]
    kernel_dirs = {p.split("/")[2] for p in reader["seen"] if p.startswith("/tmp/donghaeng-kernel-")}
    assert kernel_dirs == {reader["mine"].split("/")[2]}  # only its own connection folder, private to the grader
    assert reader["mine"].startswith("/tmp/donghaeng-kernel-") and int(reader["mode"], 8) & 0o077 == 0
    # It was handed the writer's connection file (and its own) but could not open it: no key, no access.
    assert reader["tried"] >= 1 and reader["opened"] == [] and reader["refused"] == ["FileNotFoundError"]
    assert kernel_connection_files(course) == []  # and nothing is left behind


# A submission that leaves a mark on the host's /var/tmp if it runs outside the sandbox.
MARK = Path("/var/tmp/donghaeng-unsandboxed-mark")
MARKER = f"open({str(MARK)!r}, 'w').write('ran on the host')\n{ADD}"


def autograde_without_user_namespaces(runner: CourseRunner) -> dict[str, Outcome]:
    """``CourseRunner.autograde`` where the kernel refuses new user namespaces (user.max_user_namespaces = 0).

    The grader-side run (``python -m donghaeng.grading.courses``, as root's autograde starts it) happens in a user
    namespace that maps every uid to itself, whose limit is set to 0: the launcher's ``unshare`` fails
    with ENOSPC, as on hosts where an admin set it so.
    """
    as_grader = runner._as_grader()
    entry = pwd.getpwnam(runner.course.grader_user)
    prelude = f"""
import ctypes, os, sys
ready, mapped = os.pipe(), os.pipe()
child = os.fork()
if child == 0:
    if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:
        os._exit(99)
    os.write(ready[1], b'.')
    os.read(mapped[0], 1)
    with open('/proc/sys/user/max_user_namespaces', 'w') as f:
        f.write('0')
    os.setgroups({as_grader['extra_groups']!r})
    os.setgid({entry.pw_gid})
    os.setuid({entry.pw_uid})
    os.execv(sys.executable, [sys.executable, '-m', 'donghaeng.grading.courses'])
os.read(ready[0], 1)
for name in ('uid_map', 'gid_map'):
    with open(f'/proc/{{child}}/{{name}}', 'w') as f:
        f.write('0 0 4294967295')
os.write(mapped[1], b'.')
sys.exit(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
"""
    request = {"settings": runner.settings.model_dump(mode="json"), "course": runner.course.id,
               "assignment": ASSIGNMENT, "force": True, "workers": 1}
    done = subprocess.run([sys.executable, "-c", prelude], input=json.dumps(request) + "\n", capture_output=True,
                          text=True, cwd=as_grader["cwd"], env=as_grader["env"], timeout=300)
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert "result" in reply, (done.returncode, reply, done.stderr[-3000:])
    return {s: Outcome(**o) for s, o in reply["result"]["outcomes"].items()}


def test_a_kernel_that_cannot_be_isolated_is_not_started(course: CourseRunner):
    shutil.rmtree(course.root / "submitted")
    MARK.unlink(missing_ok=True)
    submit(course, {"marker": MARKER})
    outcome = autograde_without_user_namespaces(course)["marker"]
    assert outcome.status == "failed"  # not graded: nbgrader never got a kernel
    reason = " ".join(outcome.reasons)
    assert reason.startswith("채점 커널을 격리할 수 없어서 실행하지 않았어요")
    assert "user.max_user_namespaces = 0" in reason and "sysctl -w user.max_user_namespaces" in reason
    assert "The grading kernel was not started" in reason  # English after the Korean
    assert "SandboxKernelManager.require_isolation = False" in reason
    assert not MARK.exists()  # the learner's code never ran
    notebook = course.root / "autograded" / "marker" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert not notebook.exists() or "ran on the host" not in notebook.read_text(encoding="utf-8")


def test_an_admin_may_opt_out_of_isolation(course: CourseRunner):
    """``c.SandboxKernelManager.require_isolation = False`` in an nbgrader config (the grader's own here)."""
    entry = pwd.getpwnam(course.course.grader_user)
    config = Path(entry.pw_dir) / ".jupyter" / "nbgrader_config.py"
    config.parent.mkdir(exist_ok=True)
    config.write_text("c.SandboxKernelManager.require_isolation = False\n", encoding="utf-8")
    os.chown(config.parent, entry.pw_uid, entry.pw_gid)
    MARK.unlink(missing_ok=True)
    try:
        outcome = autograde_without_user_namespaces(course)["marker"]
        assert outcome.status == "graded" and outcome.score == 2
        assert MARK.read_text() == "ran on the host"  # no sandbox: why this is opt-in
        log = (course.root / ".donghaeng" / "autograde" / ASSIGNMENT / "marker.log").read_text(encoding="utf-8")
        assert "격리 없이 자원 한도만 걸고 채점해요" in log and "user.max_user_namespaces" in log
    finally:
        shutil.rmtree(config.parent)
        MARK.unlink(missing_ok=True)


def test_where_isolation_works_the_same_submission_is_graded_in_the_sandbox(course: CourseRunner):
    """The normal path after the two runs above: sandboxed, graded, and the mark stays in the sandbox."""
    submit(course, {"good1": NORMAL["good1"]})
    result = course.autograde(ASSIGNMENT, force=True)
    got = scores(course)
    assert result.ok == ["good1", "marker"] and (got["good1"], got["marker"]) == (2, 2)
    assert not MARK.exists()
