"""Who may receive which level: nbgrader's gradebooks read through its ``Gradebook`` API, explained in Korean."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from donghaeng.common.cohort import Cohort
from donghaeng.grading.courses import gradebook_snapshot
from donghaeng.services.dashboard.calibration import RubricSet, load_sets
from donghaeng.common.settings import Settings
from donghaeng.services.certification.policy import CertificationError, Level, Policy, load_policy
from donghaeng.services.certification.store import Certificate, Store, TeachBackRecord


@dataclass(frozen=True)
class Score:
    assignment: str
    score: float | None  # None: not submitted
    max_score: float
    needs_manual_grade: bool = False

    @property
    def percent(self) -> float:
        return 100 * (self.score or 0) / self.max_score if self.max_score else 0.0


@dataclass(frozen=True)
class CalibrationStanding:
    """A candidate's calibration on one rubric set: the best of their limited attempts."""

    rubric: str
    title: str
    best: float | None  # None: no attempt yet
    used: int
    allowed: int

    @property
    def left(self) -> int:
        return max(0, self.allowed - self.used)


@dataclass(frozen=True)
class Eligibility:
    level: str  # level id
    name: str  # level name (Korean)
    eligible: bool
    missing: list[str] = field(default_factory=list)  # Korean sentences


@dataclass(frozen=True)
class LearnerStatus:
    login: str
    name: str
    role: str
    courses: tuple[str, ...]
    levels: list[str]  # ids of levels with a valid (not revoked) certificate
    eligibility: dict[str, Eligibility]  # level id -> eligibility
    certificates: list[Certificate]
    scores: dict[str, dict[str, Score]]  # course -> assignment -> score


def read_gradebook(settings: Settings, course: str) -> tuple[dict[str, float], dict[str, dict[str, Score]]]:
    """(max score per released assignment, student -> assignment -> score) of one course's gradebook."""
    maxima: dict[str, float] = {}
    scores: dict[str, dict[str, Score]] = {}
    with gradebook_snapshot(settings, course) as gb:
        if gb is None:  # nothing released yet
            return {}, {}
        for assignment in gb.assignments:
            maxima[assignment.name] = assignment.max_score
            for sub in assignment.submissions:
                scores.setdefault(sub.student.id, {})[assignment.name] = Score(
                    assignment.name, sub.score, assignment.max_score, bool(sub.needs_manual_grade))
    return maxima, scores


def _pct(value: float) -> str:
    return f"{value:.0f}%"


def _calibration_missing(minimum: float, standings: list[CalibrationStanding]) -> list[str]:
    missing = []
    for st in standings:
        if st.best is None:
            missing.append(f"채점 맞추기를 아직 하지 않았어요: {st.title} (기회 {st.allowed}번)")
        elif st.best < minimum:
            left = f"남은 기회 {st.left}번" if st.left else "남은 기회가 없어요: 트레이너와 이야기해 주세요"
            missing.append(f"채점 맞추기 일치도(카파)가 {minimum:g}보다 낮아요: {st.title} "
                           f"(가장 높은 값 {st.best:.2f}, {left})")
    return missing


def _teachback_missing(minimum: int, record: TeachBackRecord | None) -> list[str]:
    if record is None:
        return ["시범 강의 관찰 기록이 없어요: 트레이너가 시범 강의를 보고 대시보드에 적어야 해요"]
    if not record.attended:
        return [f"시범 강의({record.session_date})에 출석하지 않았어요"]
    if record.score < minimum:
        return [f"시범 강의 점검표가 {minimum}개보다 적어요 (지금 {record.score}/{record.max_score}개)"]
    return []


def check_level(level: Level, maxima: dict[str, float], scores: dict[str, Score], *, issued: set[str],
                attendance: int, calibration: list[CalibrationStanding], teachback: TeachBackRecord | None,
                policy: Policy) -> Eligibility:
    """Every requirement of *level* the learner does not meet yet, as a Korean sentence."""
    missing: list[str] = []
    if level.prerequisite and level.prerequisite not in issued:
        missing.append(f"먼저 '{policy.level(level.prerequisite).name}' 단계를 받아야 해요")
    got = total = 0.0
    for rule in level.assignments:
        if rule.name not in maxima:
            missing.append(f"{rule.name} 과제가 아직 배포되지 않았어요")
            continue
        score = scores.get(rule.name)
        total += maxima[rule.name]
        if score is None or score.score is None:
            missing.append(f"{rule.name} 과제를 아직 제출하지 않았어요(또는 채점 전이에요)")
            continue
        got += score.score
        if score.needs_manual_grade and level.manual_grading_done:
            missing.append(f"{rule.name} 과제에 트레이너가 손으로 채점할 답이 남아 있어요")
        if rule.min_percent is not None and score.percent < rule.min_percent:
            missing.append(f"{rule.name} 점수가 {_pct(rule.min_percent)} 미만이에요 (지금 {_pct(score.percent)})")
        if rule.min_points is not None and score.score < rule.min_points:
            missing.append(f"{rule.name} 점수가 {rule.min_points:g}점 미만이에요 (지금 {score.score:g}점)")
    if level.min_total_percent is not None and total:
        overall = 100 * got / total
        if overall < level.min_total_percent:
            missing.append(f"전체 점수가 {_pct(level.min_total_percent)} 미만이에요 (지금 {_pct(overall)})")
    if level.min_attendance is not None and attendance < level.min_attendance:
        missing.append(f"출석이 {level.min_attendance}회보다 적어요 (지금 {attendance}회)")
    if level.min_calibration_kappa is not None:
        missing += _calibration_missing(level.min_calibration_kappa, calibration)
    if level.min_teachback_checklist is not None:
        missing += _teachback_missing(level.min_teachback_checklist, teachback)
    return Eligibility(level.id, level.name, not missing, missing)


def calibration_standings(store: Store, policy: Policy, login: str,
                          sets: Mapping[str, RubricSet]) -> list[CalibrationStanding]:
    """Where *login* stands on every rubric set the policy counts (all of *sets* by default)."""
    result = []
    for rubric in policy.calibration.rubrics or sorted(sets):
        if rubric not in sets:
            raise CertificationError(f"수료 기준의 채점 맞추기 '{rubric}'가 graders/calibration에 없어요. "
                                     f"있는 것: {', '.join(sorted(sets))}")
        kappas = [a.kappa for a in store.calibration_attempts(login, rubric)]
        result.append(CalibrationStanding(rubric, sets[rubric].title, max(kappas, default=None), len(kappas),
                                          policy.calibration.attempts))
    return result


def evaluate(settings: Settings, login: str | None = None) -> list[LearnerStatus]:
    """Certification status of every learner (or only *login*): levels held and what each level still needs."""
    store = Store.of(settings)
    policy = load_policy(settings)
    accounts = Cohort(settings.paths.cohort_db).accounts()
    accounts = [a for a in accounts if (a.login == login if login else a.person.role == "learner")]
    books = {course: read_gradebook(settings, course) for course in {lv.course for lv in policy.levels}}
    needs_calibration = any(lv.min_calibration_kappa is not None for lv in policy.levels)
    sets = load_sets() if needs_calibration else {}  # the root-only samples, read once
    result = []
    for account in accounts:
        person = account.person
        certificates = store.certificates(person.login)
        issued = {c.level for c in certificates if not c.revoked}
        scores = {course: book[1].get(person.login, {}) for course, book in books.items()}
        standings = calibration_standings(store, policy, person.login, sets) if sets else []
        eligibility = {
            level.id: check_level(level, books[level.course][0], scores[level.course], issued=issued,
                                  attendance=store.attendance(person.login, level.course), calibration=standings,
                                  teachback=store.teachback(person.login, level.course), policy=policy)
            for level in policy.levels
        }
        result.append(LearnerStatus(person.login, person.name, person.role, person.courses,
                                    [lv.id for lv in policy.levels if lv.id in issued], eligibility,
                                    certificates, scores))
    return result
