"""Rubric calibration for the TTT track: a trainer candidate grades sample answers with one of the course's
real rubrics, and their agreement with the master trainers' grades is measured.

The samples live in ``graders/calibration/*.toml`` (one rubric set per file, readable by root only: this
service grades against them).  A set names the rubric it copies (e.g. m1's question 4, three criteria
worth one point each) and holds at least :data:`MIN_SAMPLES` answers with the master grade of every
criterion.

* **Rotation**: each attempt shows ``samples_per_attempt`` answers drawn for that candidate and attempt
  (seeded by set, login and attempt number, so the form and its POST agree without storing anything
  first).  Answers the candidate has not seen come first, and every total score the masters gave is
  represented, so one attempt cannot be learned from the last.
* **Agreement** is the **quadratic-weighted Cohen's kappa on the rubric's own total** (0–3 for m1): the
  total is what formgrader records, its levels are ordered, and a grade one point off is a smaller
  disagreement than one three points off.  Plain exact agreement would reward a candidate who gives
  every answer the most common grade; kappa removes the agreement expected by chance.  Per criterion
  (one point, yes or no) the candidate is told only which criteria drifted and in which direction
  (more lenient or stricter than the masters), from the exact agreement over the attempt.
* **Limited attempts** (``[calibration] attempts`` in ``graders/certification.toml``), numbered per
  candidate and set; the database refuses the same number twice.
* A candidate sees their kappa and the drifted criteria, never a master grade nor which answer they got
  wrong.  Attempts are stored in ``state/certification.sqlite`` (``donghaeng.services.certification.store``).
"""

from __future__ import annotations

import hashlib
import random
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from donghaeng.services.certification.store import Store
from donghaeng.common.settings import REPO_ROOT, Settings

CALIBRATION_DIR = REPO_ROOT / "graders" / "calibration"
MIN_SAMPLES = 15
DRIFT_BELOW = 0.8  # a criterion whose exact agreement is lower is reported as drifting
Weighting = Literal["none", "linear", "quadratic"]
WEIGHTING: Weighting = "quadratic"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Strict):
    score: int = Field(ge=0)
    label: str = Field(description="What the level means, in Korean (e.g. '있어요').")


class Criterion(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    name: str = Field(description="The criterion's name as the rubric says it (Korean).")
    description: str = Field(description="What earns the points, as in the trainers' answer key.")
    levels: list[Level] = Field(min_length=2)

    @property
    def scores(self) -> list[int]:
        return sorted(level.score for level in self.levels)


class Sample(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]{1,16}$")
    answer: str = Field(description="The learner's answer the candidate grades.")
    master: dict[str, int] = Field(description="The master trainers' grade per criterion id.")
    note: str = Field(default="", description="Why (for master trainers; never shown to candidates).")

    def total(self) -> int:
        return sum(self.master.values())


class RubricSet(_Strict):
    id: str = ""
    title: str
    rubric: str = Field(description="Where the course's rubric is written (answer key and question).")
    question: str = Field(description="The question the learners answered.")
    criteria: list[Criterion] = Field(min_length=1)
    samples: list[Sample] = Field(min_length=MIN_SAMPLES)

    @model_validator(mode="after")
    def _grades_are_levels(self) -> RubricSet:
        allowed = {c.id: set(c.scores) for c in self.criteria}
        if len(allowed) != len(self.criteria):
            raise ValueError("criteria ids must be unique")
        ids = [s.id for s in self.samples]
        if len(ids) != len(set(ids)):
            raise ValueError("sample ids must be unique")
        for sample in self.samples:
            if set(sample.master) != set(allowed):
                raise ValueError(f"sample '{sample.id}': grade exactly the criteria {sorted(allowed)}")
            for criterion, grade in sample.master.items():
                if grade not in allowed[criterion]:
                    raise ValueError(f"sample '{sample.id}': {grade} is not a level of '{criterion}'")
        return self

    @property
    def totals(self) -> list[int]:
        """Every total the rubric can give (its own scale, e.g. 0–3)."""
        return list(range(sum(c.scores[0] for c in self.criteria), sum(c.scores[-1] for c in self.criteria) + 1))

    def sample(self, sample_id: str) -> Sample:
        return next(s for s in self.samples if s.id == sample_id)


class CalibrationError(ValueError):
    """A rubric file or a submitted grading is invalid; the message is Korean."""


def load_sets(folder: Path = CALIBRATION_DIR) -> dict[str, RubricSet]:
    """Every rubric set in *folder*, by file stem; a broken file fails with its name and the reason."""
    sets = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            sets[path.stem] = RubricSet(**data, id=path.stem)
        except (tomllib.TOMLDecodeError, ValidationError, TypeError) as exc:
            raise CalibrationError(f"채점 보정 파일 {path.name}이(가) 잘못됐어요: {exc}") from exc
    return sets


def draw(rubric: RubricSet, login: str, attempt: int, size: int, seen: Collection[str] = ()) -> list[Sample]:
    """The samples of one attempt: the same for the same candidate and attempt, others for the next one.

    One sample of every master total comes first (so the whole scale appears), then the rest, answers
    not in *seen* before those already shown; the result is shuffled.
    """
    rng = random.Random(hashlib.sha256(f"{rubric.id}|{login}|{attempt}".encode()).digest())

    def fresh_first(samples: list[Sample]) -> list[Sample]:
        samples = samples[:]
        rng.shuffle(samples)
        return sorted(samples, key=lambda s: s.id in seen)  # stable: shuffled within unseen and seen

    groups: dict[int, list[Sample]] = {}
    for sample in rubric.samples:
        groups.setdefault(sample.total(), []).append(sample)
    ordered = [fresh_first(groups[total]) for total in sorted(groups)]
    chosen = [group[0] for group in ordered][:size]
    chosen += fresh_first([s for group in ordered for s in group[1:]])[:size - len(chosen)]
    rng.shuffle(chosen)
    return chosen


def cohen_kappa(a: Sequence[int], b: Sequence[int], categories: Sequence[int],
                weighting: Weighting = WEIGHTING) -> float:
    """Cohen's kappa of two raters' grades on the same items, over the ordered *categories*.

    ``kappa = 1 - sum(w * observed) / sum(w * expected)`` with disagreement weights ``w`` of 0/1
    (``none``: plain kappa), ``|i-j|`` (``linear``) or ``(i-j)^2`` (``quadratic``) on category indices.
    """
    if len(a) != len(b) or not a:
        raise ValueError("both raters must grade the same, non-empty list of items")
    index = {c: i for i, c in enumerate(categories)}
    k, n = len(categories), len(a)
    observed = [[0.0] * k for _ in range(k)]
    for x, y in zip(a, b):
        observed[index[x]][index[y]] += 1 / n
    rows = [sum(observed[i]) for i in range(k)]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]

    def weight(i: int, j: int) -> float:
        if weighting == "none":
            return float(i != j)
        return abs(i - j) if weighting == "linear" else (i - j) ** 2

    disagree = sum(weight(i, j) * observed[i][j] for i in range(k) for j in range(k))
    chance = sum(weight(i, j) * rows[i] * cols[j] for i in range(k) for j in range(k))
    if chance == 0:  # both raters used one and the same category throughout: full agreement
        return 1.0
    return 1 - disagree / chance


def agreement_label(kappa: float) -> str:
    """Landis & Koch's bands, in plain Korean."""
    for limit, label in ((0.8, "거의 완벽하게 일치해요"), (0.6, "상당히 일치해요"), (0.4, "어느 정도 일치해요"),
                         (0.2, "조금 일치해요"), (0.0, "거의 일치하지 않아요")):
        if kappa > limit:
            return label
    return "우연보다도 일치하지 않아요"


@dataclass(frozen=True)
class Result:
    login: str
    rubric: str
    attempt: int
    kappa: float
    samples: tuple[str, ...]  # ids graded; a candidate sees only how many
    drift: tuple[str, ...]  # Korean sentences, one per drifting criterion

    @property
    def label(self) -> str:
        return agreement_label(self.kappa)


def field_name(sample: Sample, criterion: Criterion) -> str:
    """The form field of one grade (the form and the POST handler share it)."""
    return f"grade-{sample.id}-{criterion.id}"


def _drift(criterion: Criterion, pairs: list[tuple[int, int]]) -> str | None:
    """A Korean sentence when the candidate's grades on *criterion* (mine, master) agree too rarely."""
    same = sum(mine == master for mine, master in pairs) / len(pairs)
    if same >= DRIFT_BELOW:
        return None
    lenient = sum(mine > master for mine, master in pairs)
    strict = sum(mine < master for mine, master in pairs)
    way = ("마스터 강사보다 후하게 준 편이에요" if lenient > strict else
           "마스터 강사보다 박하게 준 편이에요" if strict > lenient else "후하게도, 박하게도 갈렸어요")
    return f"「{criterion.name}」 기준: 마스터 강사와 {same:.0%}만 같아요. {way}."


def grade(rubric: RubricSet, login: str, attempt: int, samples: Sequence[Sample],
          grades: Mapping[str, int]) -> Result:
    """Score a candidate's grading of *samples* (form field name -> grade); a missing or unknown grade is refused."""
    missing = sorted({i + 1 for i, s in enumerate(samples) for c in rubric.criteria
                      if field_name(s, c) not in grades})
    if missing:
        raise CalibrationError(f"모든 답안의 기준을 하나씩 다 채점해 주세요. 빠진 답안: {', '.join(map(str, missing))}번")
    wrong = sorted({i + 1 for i, s in enumerate(samples) for c in rubric.criteria
                    if grades[field_name(s, c)] not in c.scores})
    if wrong:
        raise CalibrationError(f"루브릭에 없는 점수예요: {', '.join(map(str, wrong))}번 답안")
    mine = [sum(grades[field_name(s, c)] for c in rubric.criteria) for s in samples]
    master = [s.total() for s in samples]
    drift = [d for c in rubric.criteria
             if (d := _drift(c, [(grades[field_name(s, c)], s.master[c.id]) for s in samples]))]
    return Result(login, rubric.id, attempt, cohen_kappa(mine, master, rubric.totals), tuple(s.id for s in samples),
                  tuple(drift))


def record(settings: Settings, result: Result, recorded_by: str) -> None:
    """Store the attempt where the certification policy reads it (``certification.store``)."""
    Store.of(settings).record_calibration(result.login, result.rubric, result.attempt, result.kappa,
                                          list(result.samples), list(result.drift), recorded_by)


@dataclass(frozen=True)
class Next:
    """The candidate's next attempt on a set: its number and samples, or None when none is left."""

    attempt: int
    samples: list[Sample]


def next_attempt(settings: Settings, rubric: RubricSet, login: str, *, allowed: int, size: int) -> Next | None:
    done = Store.of(settings).calibration_attempts(login, rubric.id)
    if len(done) >= allowed:
        return None
    seen = {sample for attempt in done for sample in attempt.samples}
    number = len(done) + 1
    return Next(number, draw(rubric, login, number, size, seen))
