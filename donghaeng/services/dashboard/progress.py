"""Cohort progress of one course: learner × assignment states, scores, risks and the manual-grading queue.

Everything is read from nbgrader's own records: the exchange (``inbound`` submissions, ``outbound``
releases, released ``feedback``), the course's gradebook through ``nbgrader.api.Gradebook``, and the
hub's ``last_activity`` (passed in by the caller, who asks the hub API).  Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from zoneinfo import ZoneInfo

from nbgrader.utils import notebook_hash

from donghaeng.common import safe_fs
from donghaeng.common.cohort import Cohort
from donghaeng.grading.courses import gradebook_snapshot
from donghaeng.common.roster import Person
from donghaeng.common.settings import Course, Settings

KST = ZoneInfo("Asia/Seoul")


def local_time(moment: datetime | None) -> str:
    """Korean time, as trainers read it; empty for never."""
    return f"{moment.astimezone(KST):%Y-%m-%d %H:%M}" if moment else ""


class State(str, Enum):
    NOT_STARTED = "not_started"
    SUBMITTED = "submitted"
    GRADED = "graded"
    FEEDBACK = "feedback"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]


STATE_LABELS = {
    State.NOT_STARTED: "시작 전",
    State.SUBMITTED: "제출함",
    State.GRADED: "채점 완료",
    State.FEEDBACK: "피드백 있음",
}


@dataclass(frozen=True)
class Cell:
    """One learner's standing on one assignment."""

    state: State
    score: float | None = None
    max_score: float | None = None
    needs_manual_grade: bool = False

    @property
    def percent(self) -> float | None:
        if self.score is None or not self.max_score:
            return None
        return round(100 * self.score / self.max_score, 1)

    @property
    def text(self) -> str:
        """What a trainer reads in the table and the exports, e.g. '채점 완료 5/6점 (손채점 대기)'."""
        text = self.state.label
        if self.score is not None and self.max_score is not None:
            text += f" {self.score:g}/{self.max_score:g}점"
        if self.needs_manual_grade:
            text += " (손채점 대기)"
        return text


@dataclass
class LearnerRow:
    person: Person
    cells: dict[str, Cell]
    last_activity: datetime | None
    risks: list[str] = field(default_factory=list)


@dataclass
class CourseReport:
    course: Course
    assignments: list[str]
    learners: list[LearnerRow]
    manual_queue: dict[str, int]
    inactive_days: int
    failing_below: float

    def percents(self, assignment: str) -> list[float]:
        """Graded scores in percent, for the distribution plot."""
        return [p for row in self.learners if (p := row.cells[assignment].percent) is not None]

    @property
    def at_risk(self) -> list[LearnerRow]:
        return [row for row in self.learners if row.risks]


def course_learners(settings: Settings, course_id: str) -> list[Person]:
    """Learners enrolled in *course_id*, from the cohort database (the roster is the source of truth)."""
    accounts = Cohort(settings.paths.cohort_db).accounts()
    return [a.person for a in accounts if a.person.role == "learner" and course_id in a.person.courses]


def _exchange_dir(settings: Settings, course_id: str) -> Path:
    return settings.paths.exchange / course_id  # c.Exchange.path_includes_course = True


def released_assignments(settings: Settings, course_id: str) -> list[str]:
    outbound = _exchange_dir(settings, course_id) / "outbound"
    return sorted(p.name for p in outbound.iterdir() if p.is_dir()) if outbound.is_dir() else []


def inbound_submissions(settings: Settings, course_id: str) -> set[tuple[str, str]]:
    """(student, assignment) pairs submitted to the exchange; folders are 'student+assignment+time+random'."""
    inbound = _exchange_dir(settings, course_id) / "inbound"
    if not inbound.is_dir():
        return set()
    pairs = set()
    for entry in inbound.iterdir():
        parts = entry.name.split("+")
        if entry.is_dir() and len(parts) >= 3:
            pairs.add((parts[0], parts[1]))
    return pairs


def released_feedback(settings: Settings, course_id: str) -> set[tuple[str, str]]:
    """(student, assignment) pairs whose feedback is in the exchange, found as nbgrader names it:
    md5(submission secret + notebook id) for each notebook under the course's feedback folder."""
    outbound = _exchange_dir(settings, course_id) / "feedback"
    feedback_root = settings.paths.course_dir(course_id) / "feedback"
    if not outbound.is_dir() or not feedback_root.is_dir():
        return set()
    released = {p.stem for p in outbound.glob("*.html")}
    pairs = set()
    for secret_file in feedback_root.glob("*/*/submission_secret.txt"):
        folder = secret_file.parent
        try:  # the grader account's folder: no link is followed, no FIFO opened
            secret = safe_fs.read_text(settings.paths.courses, secret_file.relative_to(settings.paths.courses),
                                       limit=4096)
        except (OSError, UnicodeDecodeError):
            continue
        for html in folder.glob("*.html"):
            if notebook_hash(secret=secret, notebook_id=html.stem) in released:
                pairs.add((folder.parent.name, folder.name))
    return pairs


def _gradebook_cells(settings: Settings, course_id: str) -> tuple[list[str], dict[tuple[str, str], Cell]]:
    """Assignments known to the gradebook and each graded submission's cell; an absent gradebook is
    never created here (it belongs to the course's grader account)."""
    cells: dict[tuple[str, str], Cell] = {}
    with gradebook_snapshot(settings, course_id) as gb:
        if gb is None:
            return [], {}
        names = [a.name for a in gb.assignments]
        for name in names:
            for sub in gb.assignment_submissions(name):
                cells[(sub.student.id, name)] = Cell(State.GRADED, float(sub.score), float(sub.max_score),
                                                     bool(sub.needs_manual_grade))
    return names, cells


def build_report(settings: Settings, course: Course, last_activity: Mapping[str, datetime | None], *,
                 inactive_days: int, failing_below: float, now: datetime | None = None) -> CourseReport:
    """The whole cohort view of *course*; *last_activity* maps login → the hub's last_activity."""
    now = now or datetime.now(UTC)
    graded_names, graded = _gradebook_cells(settings, course.id)
    assignments = sorted(set(released_assignments(settings, course.id)) | set(graded_names))
    inbound = inbound_submissions(settings, course.id)
    feedback = released_feedback(settings, course.id)
    rows = []
    for person in course_learners(settings, course.id):
        cells = {}
        for name in assignments:
            key = (person.login, name)
            cell = graded.get(key)
            if cell and key in feedback:
                cell = Cell(State.FEEDBACK, cell.score, cell.max_score, cell.needs_manual_grade)
            elif cell is None:
                cell = Cell(State.SUBMITTED if key in inbound else State.NOT_STARTED)
            cells[name] = cell
        row = LearnerRow(person, cells, last_activity.get(person.login))
        row.risks = risks(row, now, inactive_days, failing_below)
        rows.append(row)
    queue = {name: sum(1 for (_, a), c in graded.items() if a == name and c.needs_manual_grade)
             for name in assignments}
    return CourseReport(course, assignments, rows, queue, inactive_days, failing_below)


def risks(row: LearnerRow, now: datetime, inactive_days: int, failing_below: float) -> list[str]:
    """Why a trainer should look at this learner, in Korean; empty when nothing stands out."""
    reasons = []
    not_started = [name for name, cell in row.cells.items() if cell.state is State.NOT_STARTED]
    if not_started:
        reasons.append(f"아직 시작하지 않은 과제가 있어요: {', '.join(not_started)}")
    for name, cell in row.cells.items():
        if cell.percent is not None and cell.percent < failing_below and not cell.needs_manual_grade:
            reasons.append(f"{name} 점수가 낮아요: {cell.percent:g}점 (기준 {failing_below:g}점)")
    if row.last_activity is None:
        reasons.append("아직 한 번도 접속하지 않았어요")
    elif now - row.last_activity > timedelta(days=inactive_days):
        days = (now - row.last_activity).days
        reasons.append(f"{days}일째 접속하지 않았어요 (마지막 접속 {local_time(row.last_activity)})")
    return reasons
