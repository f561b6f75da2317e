"""Gradebooks in PostgreSQL (``[database]``) on a throwaway cluster: who reaches which database, where the
passwords are, and two graders autograding one course at the same time without losing a grade.

The whole course flow on PostgreSQL (hub database included) is tests/test_course_flow.py's second run.
"""

from __future__ import annotations

import pwd
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from donghaeng.common import database
from donghaeng.common.accounts import remove_system_user
from donghaeng.grading.courses import CourseRunner, StepResult, gradebook_snapshot
from donghaeng.deploy.jupyter_config import write_shared_config
from donghaeng.common.settings import Course, Lab, Settings, SettingsError, load_settings
import test_sandbox
from test_sandbox import NORMAL, NOTEBOOK, source_notebook, submit

ASSIGNMENTS = ("hw1", "hw2")
# answer -> code score: what each learner must end up with in the gradebook
STUDENTS = {"good1": 2, "good2": 2, "wrong": 0, "half": 0}


def test_passwords_in_the_settings_file_are_refused(tmp_path):
    settings = tmp_path / "lab.toml"
    settings.write_text('[database]\nhub_url = "postgresql://hub:secret@127.0.0.1/hub"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="password_file"):
        load_settings(settings)
    loose = tmp_path / "pgpass"
    loose.write_text("*:*:*:hub:secret\n")
    loose.chmod(0o644)
    settings.write_text(f'[database]\nhub_url = "postgresql://hub@127.0.0.1/hub"\npassword_file = "{loose}"\n',
                        encoding="utf-8")
    with pytest.raises(SettingsError, match="chmod 600"):
        load_settings(settings)
    settings.write_text('[database]\ngradebook_url = "postgresql://127.0.0.1/gradebook"\n'
                        'admin_url = "postgresql://postgres@127.0.0.1/postgres"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="{course}"):
        load_settings(settings)


@pytest.fixture(scope="module")
def pg_courses(postgres) -> Iterator[tuple[Settings, list[CourseRunner]]]:
    """Two prepared courses whose gradebooks are in the cluster, each with assignments hw1 and hw2."""
    base = Path(tempfile.mkdtemp(prefix="donghaeng-pg-courses-", dir="/var/tmp"))
    base.chmod(0o755)
    for assignment in ASSIGNMENTS:
        (base / "assignments" / "source" / assignment).mkdir(parents=True)
        nbformat.write(source_notebook(), base / "assignments" / "source" / assignment / f"{NOTEBOOK}.ipynb")
    suffix = secrets.token_hex(2)
    courses = [Course(id=f"pg{part}-{suffix}", title="PostgreSQL 채점", assignments=str(base / "assignments"))
               for part in ("a", "b")]
    settings = Settings(lab=Lab(data_dir=base / "data"), courses=courses,
                        database=dict(gradebook_url=postgres.url("dh_{course}"),
                                      admin_url=postgres.url("postgres", "postgres"),
                                      password_file=postgres.password_file))
    settings.paths.root.mkdir()
    settings.paths.root.chmod(0o755)
    settings.paths.state.mkdir(mode=0o700)
    write_shared_config(settings)
    runners = [CourseRunner(settings, course) for course in courses]
    try:
        for runner in runners:
            runner.prepare()
            for assignment in ASSIGNMENTS:
                runner._check("generate", "generate_assignment", assignment, "--force")
        yield settings, runners
    finally:
        for course in courses:
            remove_system_user(course.grader_user, settings.lab.learner_group)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_each_grader_reaches_only_its_own_course(postgres, pg_courses):
    settings, (a, b) = pg_courses
    passwords = database._passwords(settings)
    own = postgres.psql(f"SELECT count(*) FROM course WHERE id = '{a.course.id}'",
                        database.database_name(settings, a.course.id), a.course.grader_user,
                        passwords[a.course.grader_user])
    assert own.returncode == 0 and own.stdout.strip() == "1", own.stderr
    other = postgres.psql("SELECT 1", database.database_name(settings, b.course.id), a.course.grader_user,
                          passwords[a.course.grader_user])
    assert other.returncode != 0 and "permission denied" in other.stderr, other.stderr
    reader = postgres.psql("INSERT INTO student (id) VALUES ('intruder')",
                           database.database_name(settings, a.course.id), database.READER_ROLE,
                           passwords[database.READER_ROLE])
    assert reader.returncode != 0 and "permission denied" in reader.stderr, reader.stderr
    # the passwords: all of them root only; each grader's own in its home, for that account only
    state = settings.paths.state / database.PASSWORDS
    assert state.stat().st_uid == 0 and stat.S_IMODE(state.stat().st_mode) == 0o600
    entry = pwd.getpwnam(a.course.grader_user)
    mine = Path(entry.pw_dir) / ".pgpass"
    assert (mine.stat().st_uid, stat.S_IMODE(mine.stat().st_mode)) == (entry.pw_uid, 0o600)
    assert passwords[b.course.grader_user] not in mine.read_text()


def scores(settings: Settings, course_id: str, assignment: str) -> dict[str, float]:
    with Gradebook(database.gradebook_url(settings, course_id), course_id=course_id) as gb:
        return {s.student.id: s.code_score for s in gb.assignment_submissions(assignment)}


@pytest.mark.slow
def test_two_graders_autograding_one_course_at_once_lose_nothing(pg_courses, monkeypatch):
    """Two trainers start `donghaeng course autograde` on the same course at the same moment (one
    assignment each): both runs finish, and every submission's grade is in the one gradebook."""
    settings, (runner, _) = pg_courses
    for assignment in ASSIGNMENTS:
        with monkeypatch.context() as patch:  # test_sandbox's hand-made submissions, for this assignment
            patch.setattr(test_sandbox, "ASSIGNMENT", assignment)
            submit(runner, {student: NORMAL[student] for student in STUDENTS})
    results: dict[str, StepResult] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(ASSIGNMENTS))

    def grade(assignment: str) -> None:
        start.wait()
        try:
            results[assignment] = runner.autograde(assignment, workers=2)
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    threads = [threading.Thread(target=grade, args=(a,)) for a in ASSIGNMENTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for assignment in ASSIGNMENTS:
        result = results[assignment]
        assert sorted(result.ok) == sorted(STUDENTS) and not result.failed, (assignment, result.failed)
        assert scores(settings, runner.course.id, assignment) == STUDENTS
    # root's readers (home, dashboard, certification) see the same grades through the read-only role
    with gradebook_snapshot(settings, runner.course.id) as gb:
        assert {s.student.id for s in gb.assignment_submissions("hw2")} == set(STUDENTS)

