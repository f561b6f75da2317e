"""Getting one VM ready for the hub: state folders, exchange, course graders, demo cohort."""

from __future__ import annotations

import os

from donghaeng.deploy.checkout import protect_checkout
from donghaeng.common.cohort import Cohort, ImportReport, write_password_file
from donghaeng.grading.courses import CourseRunner, prepare_exchange
from donghaeng.deploy.jupyter_config import write_lab_overrides, write_learner_config, write_shared_config
from donghaeng.common.roster import read_roster
from donghaeng.common.settings import REPO_ROOT, Settings

DEMO_ROSTER = REPO_ROOT / "hub" / "demo-roster.csv"


class ProvisionError(Exception):
    pass


def import_roster(settings: Settings, path: os.PathLike) -> tuple[ImportReport, str | None]:
    """Validate and import a roster (all or nothing); put learners into each course's gradebook.

    Returns the report and, when accounts were created, the root-only file with their passwords.
    """
    people = read_roster(path, [c.id for c in settings.courses])
    report = Cohort(settings.paths.cohort_db).import_people(people)
    password_file = None
    if report.initial_passwords:
        password_file = str(write_password_file(settings.paths.passwords, report.initial_passwords))
    if report.created or report.updated:
        sync_gradebooks(settings)
    return report, password_file


def sync_gradebooks(settings: Settings) -> None:
    people = [a.person for a in Cohort(settings.paths.cohort_db).accounts()]
    for course in settings.courses:
        runner = CourseRunner(settings, course)
        if runner.root.exists():
            runner.sync_students(people)


def prepare_lab(settings: Settings, demo: bool) -> ImportReport | None:
    """Idempotent: safe to run at every ``donghaeng up``."""
    if os.geteuid() != 0:
        raise ProvisionError("관리자(root) 권한이 필요해요: sudo로 실행해 주세요. / Run as root.")
    paths = settings.paths
    protect_checkout()  # again at every start: files git added since must not be readable by learners
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)
    paths.state.mkdir(exist_ok=True, mode=0o700)
    prepare_exchange(settings)
    write_shared_config(settings)
    write_learner_config(settings)
    write_lab_overrides(settings)
    for course in settings.courses:
        CourseRunner(settings, course).prepare()
    report = None
    if demo:
        report, _ = import_roster(settings, DEMO_ROSTER)
    else:
        sync_gradebooks(settings)
    return report
