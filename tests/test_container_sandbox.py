"""Autograde in throw-away containers (``[autograde] sandbox = "docker"``), on real nbgrader and dockerd.

The course, submissions and gradebook helpers are test_sandbox.py's; here each kernel runs in a
container of the grader image (no network, read-only root, memory/pids/CPU/file limits, non-root,
only the submission's folder mounted), started by the grader account through the sudo helper.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_sandbox import (
    ASSIGNMENT,
    HOSTILE,
    NORMAL,
    autograded_text,
    sandbox_course,
    scores,
    submit,
)

from test_sandbox_isolation import PEEKED, peek_at_each_other

from donghaeng.grading import sandbox_docker_helper
from donghaeng.grading.courses import CourseRunner
from donghaeng.deploy.image_refs import GRADER_IMAGE, IMAGE_PYTHON, docker_ready

pytestmark = pytest.mark.slow

ADD = "def add(a, b):\n    return a + b"
ESCAPES = {
    "course": f"secret = open('../../../gradebook.db', 'rb').read()\n{ADD}",
    "write": f"open('/etc/donghaeng-pwned', 'w').write('x')\n{ADD}",
    "socket": f"import socket\nsocket.socket(socket.AF_UNIX).connect('/var/run/docker.sock')\n{ADD}",
}
# The grader image carries the toolkit in /opt/donghaeng/src; the host runs it from the checkout.
WHERE = f"import os\nprint('in container:', os.path.isdir('/opt/donghaeng/src'), 'uid:', os.getuid())\n{ADD}"


@pytest.fixture(scope="module")
def course():
    if os.geteuid() != 0:
        pytest.skip("the course grader is a system account: run the suite as root")
    if not docker_ready():
        pytest.skip("no Docker engine answers (./lab test starts one)")
    sandbox_docker_helper.install_helper()  # what `donghaeng images build grader` installs
    assert sandbox_docker_helper.available(), f"{GRADER_IMAGE} is missing: donghaeng images build grader"
    with sandbox_course(sandbox="docker") as runner:
        yield runner


def containers_of(runner: CourseRunner) -> list[str]:
    uid = pwd.getpwnam(runner.course.grader_user).pw_uid
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label={sandbox_docker_helper.OWNER_LABEL}={uid}"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_hostile_submissions_get_zero_in_containers_and_hurt_no_one(course: CourseRunner):
    submit(course, {**HOSTILE, **ESCAPES, "good1": NORMAL["good1"], "where": WHERE})
    result = course.autograde(ASSIGNMENT, force=True)
    assert not result.failed, {s: log[-1500:] for s, log in result.failed.items()}
    got = scores(course)
    assert got["good1"] == got["where"] == 2  # graded side by side with the hostile ones
    assert {s: got[s] for s in [*HOSTILE, *ESCAPES]} == {s: 0 for s in [*HOSTILE, *ESCAPES]}

    where = autograded_text(course, "where")
    assert "in container: True" in where and "uid: 0" not in where
    loop = autograded_text(course, "loop")
    assert "CellTimeoutError" in loop or "KeyboardInterrupt" in loop
    assert "BlockingIOError" in autograded_text(course, "forkbomb")  # --pids-limit
    assert "MemoryError" in autograded_text(course, "membomb")  # RLIMIT_DATA under the cgroup limit
    out = autograded_text(course, "output", streams_only=True)
    assert "Output truncated" in out and len(out.splitlines()) <= 1001
    net = autograded_text(course, "network")
    assert "URLError" in net and "unreachable" in net.lower()  # --network none
    assert "PermissionError" in autograded_text(course, "shadow")  # the image's shadow, and not root
    assert "FileNotFoundError" in autograded_text(course, "course")  # the course folder is not mounted
    assert "Read-only file system" in autograded_text(course, "write")
    assert not Path("/etc/donghaeng-pwned").exists()
    assert "FileNotFoundError" in autograded_text(course, "socket")  # no way to the Docker engine

    home = Path(pwd.getpwnam(course.course.grader_user).pw_dir)
    assert (home / "keep.txt").read_text(encoding="utf-8") == "grader's own file"
    for path in ("gradebook.db", "source", "release", "nbgrader_config.py", f"submitted/rmrf/{ASSIGNMENT}"):
        assert (course.root / path).exists(), path
    assert "gradebook.db" not in autograded_text(course, "rmrf")
    assert not containers_of(course), "grading containers were left behind"


def test_correct_submissions_score_the_same_as_in_the_process_sandbox(course: CourseRunner):
    for student in [*HOSTILE, *ESCAPES]:  # keep this comparison short: the hostile ones were graded above
        shutil.rmtree(course.root / "submitted" / student, ignore_errors=True)
    chosen = {s: NORMAL[s] for s in ("good1", "good2", "wrong", "broken")}
    submit(course, {**chosen, "where": WHERE})
    in_docker = course.autograde(ASSIGNMENT, force=True)
    docker_scores = scores(course)
    assert "in container: True" in autograded_text(course, "where")

    autograde = course.settings.autograde.model_copy(update={"sandbox": "process"})
    process = CourseRunner(course.settings.model_copy(update={"autograde": autograde}), course.course)
    process.prepare()  # rewrites the course's nbgrader_config.py: formgrader would grade the same way
    in_process = process.autograde(ASSIGNMENT, force=True)
    assert "in container: False" in autograded_text(process, "where")

    assert in_docker.ok == in_process.ok and not in_docker.failed and not in_process.failed
    assert docker_scores == scores(process)
    assert {s: docker_scores[s] for s in chosen} == {"good1": 2, "good2": 2, "wrong": 0, "broken": 0}


def test_containers_graded_together_see_none_of_each_others_files(course: CourseRunner):
    """Each container has its own /tmp and /dev/shm (/var/tmp is the read-only image's): see test_sandbox_isolation."""
    with sandbox_course(sandbox="docker") as runner:  # a course with these two submissions only
        reader, writer = peek_at_each_other(runner)
        assert not containers_of(runner)
    assert writer["wrote"] == [folder for folder in PEEKED if folder != "/var/tmp"]
    assert not [p for p in reader["seen"] if "writer" in p], reader["seen"]
    kernel_dirs = {p.split("/")[2] for p in reader["seen"] if p.startswith("/tmp/donghaeng-kernel-")}
    assert kernel_dirs == {reader["mine"].split("/")[2]}  # its own sockets only (HOME=/tmp: its .ipython too)
    assert reader["tried"] >= 1 and reader["opened"] == [] and reader["refused"] == ["FileNotFoundError"]


def helper(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwnam(user)
    return subprocess.run(["sudo", "-n", str(sandbox_docker_helper.HELPER), *args], capture_output=True, text=True,
                          user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], cwd="/")


def test_only_grader_accounts_may_start_containers_and_only_on_their_own_folders(course: CourseRunner):
    grader = course.course.grader_user
    uid = pwd.getpwnam(grader).pw_uid
    name = f"{sandbox_docker_helper.NAME_PREFIX}-{uid}-{'0' * 12}"
    run = ["run", "--name", name, "--memory-mb", "512", "--processes", "32", "--cpus", "1",
           "--cpu-seconds", "10", "--file-mb", "8", "--open-files", "64"]
    kernel = ["--", IMAGE_PYTHON, "-m", "ipykernel_launcher", "-f"]

    refused = helper("nobody", "check")
    assert refused.returncode == 126 and "grader" in refused.stderr

    # the grader account asking to mount a folder it does not own (root's home, the course's exchange)
    theirs = helper(grader, *run, "--workdir", "/root", "--sockets", "/root", *kernel, "/root/kernel.json")
    assert theirs.returncode == 126 and "does not belong" in theirs.stderr

    # its own private folder, but a command other than the image's ipykernel
    own = tempfile.mkdtemp(prefix="donghaeng-test-")
    try:
        os.chown(own, uid, pwd.getpwnam(grader).pw_gid)
        other = helper(grader, *run, "--workdir", own, "--sockets", own, "--", "/bin/sh", "-c", "id")
        assert other.returncode == 126 and "ipykernel" in other.stderr
    finally:
        os.rmdir(own)
    assert not containers_of(course)
