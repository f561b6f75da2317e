"""Where a learner stands on each module, read from nbgrader's exchange, gradebook and the learner's files.

* 시작 전 (not_started): released (``exchange/<course>/outbound/<module>``), not fetched yet;
* 진행 중 (in_progress): ``~/<course>/<module>`` exists in the learner's home;
* 제출함 (submitted): a submission in ``exchange/<course>/inbound`` newer than any grade;
* 채점 완료 (graded): the gradebook holds a grade for the latest submission;
* 피드백 있음 (feedback): nbgrader released feedback for the latest submission
  (``exchange/<course>/feedback/<hash>.html``, hash as nbgrader's ``release_feedback`` makes it).

The home service runs as root, so it reads these places directly; it never writes them.
"""

from __future__ import annotations

import pwd
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.utils import notebook_hash, parse_utc

from donghaeng.common import safe_fs
from donghaeng.grading.courses import gradebook_snapshot
from donghaeng.common.settings import Course, Settings
from donghaeng.services.home.schedule import Module, load_schedule

STATE_LABELS = {
    "not_started": "시작 전",
    "in_progress": "진행 중",
    "submitted": "제출함",
    "graded": "채점 완료",
    "feedback": "채점 완료 · 피드백 있음",
}


@dataclass(frozen=True)
class Submission:
    timestamp: datetime
    path: Path


@dataclass
class ModuleProgress:
    course: str
    assignment: str
    title: str
    minutes: int | None
    deadline: datetime | None
    notebooks: list[str]  # released notebook names, without .ipynb
    state: str = "not_started"
    submitted_at: datetime | None = None
    score: float | None = None
    max_score: float | None = None
    feedback: list[str] = field(default_factory=list)  # notebooks with released feedback

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def late(self) -> bool:
        return self.deadline is not None and datetime.now(timezone.utc) > self.deadline


def released(settings: Settings, course_id: str) -> list[str]:
    outbound = settings.paths.exchange / course_id / "outbound"
    return sorted(p.name for p in outbound.iterdir() if p.is_dir()) if outbound.is_dir() else []


def released_notebooks(settings: Settings, course_id: str, assignment: str) -> list[str]:
    folder = settings.paths.exchange / course_id / "outbound" / assignment
    return sorted(p.stem for p in folder.glob("*.ipynb"))


def submissions(settings: Settings, course_id: str, student: str, assignment: str) -> list[Submission]:
    """The learner's submissions of *assignment*, oldest first (``<student>+<assignment>+<time>+<random>``)."""
    inbound = settings.paths.exchange / course_id / "inbound"
    found = []
    for path in inbound.glob(f"{student}+{assignment}+*") if inbound.is_dir() else ():
        stamp = _exchange_text(settings, path / "timestamp.txt")
        if stamp is not None:
            found.append(Submission(_utc(parse_utc(stamp.strip())), path))
    return sorted(found, key=lambda s: s.timestamp)


def _exchange_text(settings: Settings, path: Path) -> str | None:
    """A small text file in the exchange, read without following a link or opening a FIFO (its folders
    belong to graders and learners); None when it is missing or not a plain file."""
    try:
        return safe_fs.read_text(settings.paths.exchange, path.relative_to(settings.paths.exchange), limit=4096)
    except (OSError, UnicodeDecodeError):
        return None


def learner_folder(settings: Settings, student: str, course_id: str, assignment: str) -> Path | None:
    try:
        home = Path(pwd.getpwnam(student).pw_dir)
    except KeyError:
        return None
    return home / course_id / assignment


def _feedback(settings: Settings, course_id: str, submission: Submission, notebooks: list[str]) -> list[str]:
    secret = _exchange_text(settings, submission.path / "submission_secret.txt")
    if secret is None:
        return []
    folder = settings.paths.exchange / course_id / "feedback"
    return [nb for nb in notebooks if (folder / f"{notebook_hash(secret=secret, notebook_id=nb)}.html").is_file()]


def feedback_html(settings: Settings, course_id: str, student: str, assignment: str, notebook: str) -> bytes | None:
    """The released feedback HTML of the learner's latest submission that has feedback for *notebook*."""
    for submission in reversed(submissions(settings, course_id, student, assignment)):
        secret = _exchange_text(settings, submission.path / "submission_secret.txt")
        if secret is None:
            continue
        name = f"{course_id}/feedback/{notebook_hash(secret=secret, notebook_id=notebook)}.html"
        try:
            return safe_fs.read_bytes(settings.paths.exchange, name)
        except OSError:
            continue
    return None


def _grades(settings: Settings, course_id: str, student: str) -> dict[str, tuple[datetime | None, float, float, datetime | None]]:
    """assignment -> (graded submission's time, score, max score, duedate) from the course gradebook."""
    from nbgrader.api import MissingEntry

    grades = {}
    with gradebook_snapshot(settings, course_id) as gb:
        for assignment in gb.assignments if gb is not None else ():
            try:
                sub = gb.find_submission(assignment.name, student)
            except MissingEntry:
                grades[assignment.name] = (None, 0.0, 0.0, assignment.duedate)
                continue
            graded = sub.timestamp if any(nb.grades for nb in sub.notebooks) else None
            grades[assignment.name] = (graded, sub.score, sub.max_score, assignment.duedate)
    return grades


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def deadline(settings: Settings, course: Course, assignment: str) -> datetime | None:
    """nbgrader's duedate (a trainer may have moved it) or else the schedule's deadline."""
    from nbgrader.api import MissingEntry

    db_due = None
    with gradebook_snapshot(settings, course.id) as gb:
        if gb is not None:
            try:
                db_due = gb.find_assignment(assignment).duedate
            except MissingEntry:
                pass
    return _utc(db_due) or load_schedule(settings, course).get(assignment, Module()).deadline


def course_progress(settings: Settings, course: Course, student: str) -> list[ModuleProgress]:
    """Every released module of *course* with the learner's state, in release order (by id)."""
    schedule = load_schedule(settings, course)
    grades = _grades(settings, course.id, student)
    result = []
    for assignment in released(settings, course.id):
        planned = schedule.get(assignment, Module())
        graded_at, score, max_score, duedate = grades.get(assignment, (None, 0.0, 0.0, None))
        notebooks = released_notebooks(settings, course.id, assignment)
        progress = ModuleProgress(course.id, assignment, planned.title or assignment, planned.minutes,
                                  _utc(duedate) or planned.deadline, notebooks)
        folder = learner_folder(settings, student, course.id, assignment)
        if folder is not None and folder.is_dir():
            progress.state = "in_progress"
        subs = submissions(settings, course.id, student, assignment)
        if subs:
            latest = subs[-1]
            progress.state, progress.submitted_at = "submitted", latest.timestamp
            if graded_at is not None and _utc(graded_at) >= latest.timestamp:
                progress.state, progress.score, progress.max_score = "graded", score, max_score
            progress.feedback = _feedback(settings, course.id, latest, notebooks)
            if progress.feedback:
                progress.state = "feedback"
                if graded_at is not None:
                    progress.score, progress.max_score = score, max_score
        result.append(progress)
    return result
