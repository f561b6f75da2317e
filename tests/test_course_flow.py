"""The whole path on a real hub: release → fetch → work → submit → collect → autograde → feedback.

Learners use their own servers' nbgrader endpoints over HTTP (as the JupyterLab panel does); the
trainer uses the ``donghaeng course`` commands.  Bad submissions must not stop or lose anyone's work.
Every test runs twice: on the SQLite lab, and on a lab whose hub database and gradebooks are in
PostgreSQL (``[database]``, a throwaway cluster), where the dashboard and the certification gate read
the grades too.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from conftest import PEOPLE, login_cache
from donghaeng.common import database
from labharness import ARTIFACTS, running_lab
from notebooks import solved

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
COURSE, ASSIGNMENT = "ai-basics", "m1-first-steps"
NOTEBOOK = f"{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
# every m1 question is answered through its widget: the answer key is what a perfect learner saves
WIDGET_ANSWER = json.loads((REPO / "assignments" / COURSE / "answer-keys" / f"{ASSIGNMENT}.answers.json")
                           .read_text(encoding="utf-8"))


def put_file(user, path: str, text: str) -> None:
    r = user.server("PUT", f"api/contents/{path}", json={"type": "file", "format": "text", "content": text})
    assert r.status_code in (200, 201), r.text


def assignment_action(user, action: str) -> dict | list:
    r = user.server("POST", f"assignments/{action}", data={"course_id": COURSE, "assignment_id": ASSIGNMENT})
    assert r.status_code == 200, r.text
    return r.json()


def run_as(user: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lab(request, lab):
    """The session's SQLite lab, or one of the same set-up whose databases are in PostgreSQL."""
    if request.param == "sqlite":
        yield lab
        return
    cluster = request.getfixturevalue("postgres")
    with running_lab(PEOPLE, "[home]\nenabled = false\n" + cluster.settings_toml()) as pg_lab:
        yield pg_lab


@pytest.fixture(scope="module")
def logged_in(lab):
    return login_cache(lab)


@pytest.fixture(scope="module")
def released(lab):
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    return lab


@pytest.fixture(scope="module")
def learners(released, logged_in):
    ready = {}
    for key in ("learner", "learner2"):
        user = logged_in(key)
        user.spawn()
        ready[key] = user
    return ready


def test_learner_sees_and_fetches_the_released_assignment(learners):
    learner = learners["learner"]
    listed = learner.server("GET", "assignments", params={"course_id": COURSE}).json()
    assert listed["success"] and [a["assignment_id"] for a in listed["value"]] == [ASSIGNMENT]
    assert listed["value"][0]["status"] == "released"
    after = assignment_action(learner, "fetch")
    assert after["value"][0]["status"] == "fetched"
    nb = nbformat.reads(json.dumps(learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"]), 4)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text


def test_submit_autograde_feedback(lab, learners):
    learner, learner2 = learners["learner"], learners["learner2"]
    source = nbformat.read(REPO / "assignments" / COURSE / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    released_nb = nbformat.from_dict(learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"])
    put_file(learner, NOTEBOOK, nbformat.writes(solved(released_nb, source)))
    put_file(learner, f"{COURSE}/{ASSIGNMENT}/donghaeng_answers.json", json.dumps(WIDGET_ANSWER, ensure_ascii=False))
    # an extra HTML file travels with the submission: it must not stop anyone's feedback
    put_file(learner, f"{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}-notes.html", "<script>alert(1)</script>")
    submitted = assignment_action(learner, "submit")
    assert submitted["success"], submitted

    # learner2 breaks the notebook file (not JSON any more) and submits it anyway
    assignment_action(learner2, "fetch")
    put_file(learner2, NOTEBOOK, '{"cells": [ this is not json')
    assert assignment_action(learner2, "submit")["success"]

    collected = lab.cli("course", "collect", COURSE, ASSIGNMENT)
    assert learner.name in collected.stdout and learner2.name in collected.stdout

    graded = lab.cli("course", "autograde", COURSE, ASSIGNMENT, check=False)
    # the broken notebook is refused before grading: zero with a reason, not a failed run
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert learner2.name in graded.stdout and "채점 전에 0점 1명" in " ".join(graded.stdout.split())
    course_dir = lab.settings.paths.course_dir(COURSE)
    broken = course_dir / "submitted" / learner2.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert broken.read_text() == '{"cells": [ this is not json'  # nothing lost

    with Gradebook(database.gradebook_url(lab.settings, COURSE), course_id=COURSE) as gb:
        submission = gb.find_submission(ASSIGNMENT, learner.name)
        assert submission.max_code_score == 6
        assert submission.code_score == 6
        assert submission.needs_manual_grade  # the reflection waits for the trainer
        assert gb.find_submission(ASSIGNMENT, learner2.name).score == 0

    lab.cli("course", "feedback", COURSE, ASSIGNMENT)
    after = assignment_action(learner, "fetch_feedback")
    assert after["success"]
    listing = learner.server("GET", f"api/contents/{COURSE}/{ASSIGNMENT}/feedback").json()["content"]
    assert listing, "no feedback folder was fetched"
    html_path = f"{listing[0]['path']}/{ASSIGNMENT}.html"
    feedback = learner.server("GET", f"api/contents/{html_path}", params={"type": "file", "format": "text"})
    html = feedback.json()["content"]
    assert "점수" in html and "6" in html
    fetched = learner.server("GET", f"api/contents/{listing[0]['path']}").json()["content"]
    assert [f["name"] for f in fetched] == [f"{ASSIGNMENT}.html"], "only the notebook's feedback is released"
    (ARTIFACTS / "feedback.html").write_text(html, encoding="utf-8")  # what the learner reads


def test_dashboard_and_certification_read_the_grades(lab, learners):
    """What the trainer dashboard, the certification gate and the learner home show comes from the
    gradebook just graded (with PostgreSQL: read through the read-only role, not a file)."""
    from donghaeng.services.certification import evaluate
    from donghaeng.services.dashboard.progress import build_report
    from donghaeng.services.home.progress import course_progress

    learner, learner2 = learners["learner"], learners["learner2"]
    report = build_report(lab.settings, lab.settings.course(COURSE), {}, inactive_days=7, failing_below=60)
    cells = {row.person.login: row.cells[ASSIGNMENT] for row in report.learners}
    assert (cells[learner.name].score, cells[learner.name].max_score) == (6, 9)
    assert cells[learner2.name].score == 0
    assert report.manual_queue[ASSIGNMENT] >= 1  # the reflection waits for the trainer
    [status] = evaluate(lab.settings, learner.name)
    assert status.scores[COURSE][ASSIGNMENT].score == 6
    [module] = [m for m in course_progress(lab.settings, lab.settings.course(COURSE), learner.name)
                if m.assignment == ASSIGNMENT]
    assert module.state == "feedback" and (module.score, module.max_score) == (6, 9)


def test_the_hub_keeps_its_users_in_the_configured_database(lab, learners):
    from sqlalchemy import create_engine, text

    engine = create_engine(database.hub_url(lab.settings))
    try:
        with engine.connect() as conn:
            users = set(conn.execute(text("SELECT name FROM users")).scalars())
    finally:
        engine.dispose()
    assert {user.name for user in learners.values()} <= users
    # with [database] the state folder has no SQLite hub database at all
    assert lab.settings.paths.hub_db.exists() == (lab.settings.database.hub_url is None)


def test_submission_without_the_notebook_is_refused(lab, learners):
    learner2 = learners["learner2"]
    r = learner2.server("DELETE", f"api/contents/{NOTEBOOK}")
    assert r.status_code == 204
    result = assignment_action(learner2, "submit")
    assert not result["success"]
    assert "missing" in result["value"].lower()


def test_learners_cannot_read_each_other_or_the_course(lab, learners):
    learner, learner2 = learners["learner"], learners["learner2"]
    assert learner2.server("GET", "api/contents").status_code == 200
    other = learner2.api("GET", f"/user/{learner.name}/api/contents")
    assert other.status_code in (403, 404)
    assert run_as(learner2.name, "ls", f"/home/{learner.name}").returncode != 0
    course_dir = lab.settings.paths.course_dir(COURSE)
    for path in (course_dir / "source", course_dir / "gradebook.db"):
        assert run_as(learner.name, "ls", str(path)).returncode != 0, path
    assert run_as(learner.name, "ls", str(REPO / "assignments")).returncode != 0
    if database.uses_postgres(lab.settings):  # learners have no role: the grader's URL gets them nowhere
        probe = f"import sqlalchemy; sqlalchemy.create_engine({database.gradebook_url(lab.settings, COURSE)!r}).connect()"
        denied = run_as(learner.name, str(lab.settings.lab.user_prefix / "bin" / "python"), "-c", probe)
        assert denied.returncode != 0 and "password" in denied.stderr, denied.stderr


def test_learner_server_has_no_instructor_tools(learners, logged_in):
    learner = learners["learner"]
    assert learner.server("GET", "formgrader").status_code == 404
    assert learner.server("GET", "api/terminals").status_code == 404
    page = learner.server("GET", "lab").text
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert "@jupyter/nbgrader:create-assignment" in config["disabledExtensions"]


def test_self_check_solutions_appear_only_after_the_trainer_releases_them(lab, learners):
    learner = learners["learner"]
    key, assignment = "m2-work-smarter.practice_sort", "m2-work-smarter"
    read = ("from donghaeng.toolkit.exercises import load_solution; "
            f"print(load_solution({key!r}, course={COURSE!r}, assignment={assignment!r}))")
    env = f"DONGHAENG_SOLUTIONS_DIR={lab.settings.paths.solutions}"
    python = str(lab.settings.lab.user_prefix / "bin" / "python")
    before = run_as(learner.name, "env", env, python, "-c", read)
    assert before.stdout.strip() == "None", before.stderr
    lab.cli("course", "release-solutions", COURSE, assignment)
    after = run_as(learner.name, "env", env, python, "-c", read)
    assert after.returncode == 0 and "None" not in after.stdout and after.stdout.strip(), after.stderr
