"""A trainer (a shell as ``grader-<course>``) cannot make root write, chown or read through a link, and a
learner account reads nothing in the checkout that grades them.

Real accounts, real nbgrader: the grader plants links and FIFOs where root used to follow them, then the
root steps run (``prepare_lab``, roster import, autograde, the dashboard's and home's readers).
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from donghaeng.common.accounts import ensure_system_user, remove_system_user
from donghaeng.services.certification.eligibility import read_gradebook
from donghaeng.grading.courses import CourseRunner, NbgraderError
from donghaeng.services.home.progress import feedback_html, submissions
from donghaeng.deploy.checkout import CheckoutError, protect_checkout
from donghaeng.deploy.provision import import_roster, prepare_lab
from donghaeng.common.settings import Settings, load_settings
from labharness import COURSES

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real system accounts: run as root")
REPO = Path(__file__).resolve().parent.parent
COURSE, ASSIGNMENT = "ai-basics", "m1-first-steps"


@dataclass
class Setup:
    root: Path
    settings: Settings
    runner: CourseRunner
    learner: str

    @property
    def course(self) -> Path:
        return self.runner.root


def as_user(user: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True, timeout=timeout)


def grader(setup: Setup, *cmd: str) -> None:
    result = as_user(setup.runner.course.grader_user, *cmd)
    assert result.returncode == 0, result.stderr


def outside_file(setup: Setup, name: str, data: bytes = b"root's own file\n") -> Path:
    """A root-owned file outside every folder another account can write."""
    path = setup.root / "outside" / name
    path.parent.mkdir(exist_ok=True, mode=0o755)
    path.write_bytes(data)
    path.chmod(0o644)
    return path


def unchanged(path: Path, data: bytes) -> bool:
    st = path.stat()
    return path.read_bytes() == data and (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o644)


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    root = Path(tempfile.mkdtemp(prefix="donghaeng-rootsafe-", dir="/var/tmp"))
    root.chmod(0o755)
    learner = f"t{secrets.token_hex(2)}safe"
    settings_path = root / "lab.toml"
    settings_path.write_text(f'[lab]\ndata_dir = "{root / "data"}"\n' + COURSES, encoding="utf-8")
    with (root / "roster.csv").open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows([["이름", "아이디", "역할", "과정"], ["안전해", learner, "learner", COURSE]])
    settings = load_settings(settings_path)
    try:
        prepare_lab(settings, demo=False)
        import_roster(settings, root / "roster.csv")
        ensure_system_user(learner, settings.lab.learner_group, settings.lab.home_root)
        yield Setup(root, settings, CourseRunner(settings, settings.course(COURSE)), learner)
    finally:
        remove_system_user(learner, settings.lab.learner_group)
        shutil.rmtree(root, ignore_errors=True)


def test_links_planted_by_the_grader_do_not_reach_root_files(setup):
    """The reported case: ``.students.csv -> /etc/anything`` made root create it, owned by the grader."""
    roster_target, config_target = outside_file(setup, "roster-target"), outside_file(setup, "config-target")
    missing = setup.root / "outside" / "created-by-root"
    grader(setup, "ln", "-sfn", str(roster_target), str(setup.course / ".students.csv"))
    grader(setup, "ln", "-sfn", str(config_target), str(setup.course / "nbgrader_config.py"))
    grader(setup, "ln", "-sfn", str(missing), str(setup.course / ".donghaeng-probe"))
    grader(setup, "ln", "-sfn", str(setup.root / "outside"), str(setup.course / "source" / "linked"))
    prepare_lab(setup.settings, demo=False)  # course config, sources, chown; then the roster import
    assert unchanged(roster_target, b"root's own file\n") and unchanged(config_target, b"root's own file\n")
    assert not missing.exists()
    assert all(p.stat().st_uid == 0 for p in (setup.root / "outside").iterdir())
    config = setup.course / "nbgrader_config.py"
    assert not config.is_symlink() and "load_subconfig" in config.read_text()  # the link was replaced
    assert config.stat().st_uid == _ids(setup.runner.course.grader_user)[0]
    # the roster reached the gradebook (handed over on stdin, never written where a link was)
    listed = setup.runner.nbgrader("db", "student", "list")
    assert setup.learner in listed.stdout, listed.stdout + listed.stderr


def test_a_fifo_where_root_reads_or_writes_does_not_hang_it(setup):
    grader(setup, "rm", "-f", str(setup.course / "nbgrader_config.py"))
    grader(setup, "mkfifo", str(setup.course / "nbgrader_config.py"))
    grader(setup, "mkfifo", str(setup.course / ".students.csv.fifo"))
    prepare_lab(setup.settings, demo=False)  # would block forever opening the FIFO for writing
    assert (setup.course / "nbgrader_config.py").is_file()
    db = setup.course / "gradebook.db"
    grader(setup, "mv", str(db), str(setup.course / "gradebook.db.saved"))
    grader(setup, "mkfifo", str(db))
    try:
        assert read_gradebook(setup.settings, COURSE) == ({}, {})  # the certification gate reads nothing
    finally:
        grader(setup, "mv", "-f", str(setup.course / "gradebook.db.saved"), str(db))


def test_root_readers_do_not_follow_a_gradebook_or_feedback_link(setup):
    """Dashboard, home and certification read the grader's gradebook and the exchange as root."""
    secret = outside_file(setup, "secret.sqlite")
    shutil.copyfile(setup.course / "gradebook.db", secret)  # a real gradebook the grader may not read
    secret.chmod(0o600)
    db = setup.course / "gradebook.db"
    grader(setup, "mv", str(db), str(setup.course / "gradebook.db.saved"))
    grader(setup, "ln", "-s", str(secret), str(db))
    try:
        assert read_gradebook(setup.settings, COURSE) == ({}, {})
    finally:
        grader(setup, "mv", "-f", str(setup.course / "gradebook.db.saved"), str(db))
    # where root reads submissions and feedback (the exchange service's store) no learner can plant anything
    store = setup.settings.paths.exchange
    assert store.is_dir() and store.stat().st_mode & 0o777 == 0o700 and store.stat().st_uid != 0
    assert as_user(setup.learner, "ln", "-s", "/etc/shadow", str(store / "planted")).returncode != 0
    assert not (store / "planted").is_symlink()
    assert submissions(setup.settings, COURSE, setup.learner, ASSIGNMENT) == []
    assert feedback_html(setup.settings, COURSE, setup.learner, ASSIGNMENT, ASSIGNMENT) is None


def test_autograde_runs_as_the_grader_so_a_gradebook_link_gets_no_root_write(setup):
    setup.runner._check("generate", "generate_assignment", ASSIGNMENT, "--force")  # no hub here: no release
    target = outside_file(setup, "target.sqlite")
    shutil.copyfile(setup.course / "gradebook.db", target)
    data = target.read_bytes()
    submitted = setup.course / "submitted" / setup.learner / ASSIGNMENT
    grader(setup, "mkdir", "-p", str(submitted))  # an empty submission: zeroed in the gradebook by autograde
    db = setup.course / "gradebook.db"
    grader(setup, "mv", str(db), str(setup.course / "gradebook.db.saved"))
    grader(setup, "ln", "-s", str(target), str(db))
    try:
        with pytest.raises(NbgraderError):  # the grader account cannot write root's file: refused
            setup.runner.autograde(ASSIGNMENT)
        assert target.read_bytes() == data and target.stat().st_uid == 0
    finally:
        grader(setup, "mv", "-f", str(setup.course / "gradebook.db.saved"), str(db))
    result = setup.runner.autograde(ASSIGNMENT)  # and with the real gradebook it grades as before
    assert result.outcomes[setup.learner].status == "refused"
    records = setup.course / ".donghaeng"
    assert all(p.stat().st_uid != 0 for p in [db, *records.rglob("*")] if records.exists())


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


# the master grades candidates are calibrated against (the glob must find them: the test reads each)
CALIBRATION_GRADES = sorted((REPO / "graders" / "calibration").glob("*.toml"))
assert CALIBRATION_GRADES, "graders/calibration has no master grades to protect"


def test_a_learner_reads_nothing_in_the_checkout_but_the_package(setup):
    learner = setup.learner
    key = next((REPO / "assignments" / COURSE / "answer-keys").iterdir()).name
    shown = as_user(learner, "git", "-c", "safe.directory=*", "-C", str(REPO), "show",
                    f"HEAD:assignments/{COURSE}/answer-keys/{key}")
    assert shown.returncode != 0 and not shown.stdout
    for path in (REPO / "assignments" / COURSE / "answer-keys" / key, REPO / ".git" / "HEAD",
                 *CALIBRATION_GRADES, REPO / "graders" / "rubrics",
                 REPO / "hub" / "lab.toml", REPO / "tests" / "test_root_safety.py", REPO / "README.md",
                 setup.settings.paths.root / "graders" / "nbgrader_config.py"):
        assert as_user(learner, "cat", str(path)).returncode != 0, path
    for private in (".git", "assignments", "graders", "hub", "tests"):  # names are visible, contents not
        assert as_user(learner, "ls", str(REPO / private)).returncode != 0, private
    assert not (setup.settings.paths.root / "graders" / "calibration").exists()
    # what a learner's server needs still imports, from the same checkout
    imported = as_user(learner, str(Path(os.sys.executable)), "-c",
                       "import donghaeng.toolkit.widgets.choice, donghaeng.toolkit.answers, donghaeng.server.extension; print('ok')")
    assert imported.stdout.strip() == "ok", imported.stderr


def test_a_checkout_below_a_kernels_private_tmp_is_refused_before_anything_changes():
    """Grading kernels each see an empty /var/tmp (and /tmp …) of their own: a checkout there could never grade an
    answer, so `./lab` and `donghaeng up` stop with the reason instead of starting a lab where every answer scores 0."""
    checkout = Path(tempfile.mkdtemp(prefix="donghaeng-lab-", dir="/var/tmp"))
    try:
        (checkout / "assignments").mkdir(mode=0o755)
        with pytest.raises(CheckoutError, match="채점 커널은 저마다 비어 있는 /var/tmp"):
            protect_checkout(checkout)
        assert (checkout / "assignments").stat().st_mode & 0o777 == 0o755, "nothing was changed"
    finally:
        shutil.rmtree(checkout)


def test_the_grader_reads_the_rubrics_but_not_the_calibration_grades(setup):
    user = setup.runner.course.grader_user  # with its groups, as the hub's services and _as_grader run it
    read = as_user(user, "cat", str(REPO / "graders" / "rubrics" / "m3-final-prompt.toml"))
    assert read.returncode == 0 and "criteria" in read.stdout, read.stderr
    for grades in CALIBRATION_GRADES:
        assert as_user(user, "cat", str(grades)).returncode != 0, grades
    assert as_user(user, "cat", str(setup.settings.paths.root / "graders" / "nbgrader_config.py")).returncode == 0


@pytest.mark.slow
def test_the_formgrader_has_no_terminal(lab, logged_in):
    """A trainer reaches the grader account's files through the formgrader, but gets no shell there."""
    trainer = logged_in("trainer")
    assert trainer.http.get("/services/grader-ai-basics/formgrader").status_code == 200
    # jupyter_server answers 200 with the list of terminals when they are on
    assert trainer.http.get("/services/grader-ai-basics/api/terminals").status_code == 404
