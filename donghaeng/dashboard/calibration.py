"""Rubric calibration for the TTT track: a trainer candidate grades sample answers whose master grades
are known, and their agreement is measured with Cohen's kappa.

The samples live in ``graders/calibration/*.toml`` (one rubric set per file, readable by root only: this
service grades against them, and a candidate sees only the agreement figure, never a master grade).
Grades are ordinal rubric levels, so agreement is the **quadratic-weighted** Cohen's kappa: a grade one
level off counts as a small disagreement, two levels off as a large one.  Results are stored in the
certification database (``state/certification.sqlite``, table ``calibration``, schema owned by
``donghaeng.certification.store``) where the certification policy reads them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..certification.store import Store
from ..settings import REPO_ROOT, Settings

CALIBRATION_DIR = REPO_ROOT / "graders" / "calibration"
Weighting = Literal["none", "linear", "quadratic"]
WEIGHTING: Weighting = "quadratic"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Strict):
    score: int
    label: str = Field(description="What the level means, in Korean (e.g. '우수').")


class Sample(_Strict):
    id: str
    prompt: str = Field(description="The task the learner was given.")
    answer: str = Field(description="The learner's answer the candidate grades.")
    master: int = Field(description="The master trainers' grade (one of the levels' scores).")
    note: str = Field(default="", description="Why the master grade is what it is (for master trainers; never shown "
                                          "to candidates, who see only their kappa).")


class RubricSet(_Strict):
    id: str = ""
    title: str
    description: str = ""
    levels: list[Level] = Field(min_length=2)
    samples: list[Sample] = Field(min_length=2)

    @model_validator(mode="after")
    def _grades_are_levels(self) -> RubricSet:
        scores = {level.score for level in self.levels}
        if len(scores) != len(self.levels):
            raise ValueError("levels must have different scores")
        for sample in self.samples:
            if sample.master not in scores:
                raise ValueError(f"sample '{sample.id}': master grade {sample.master} is not a level")
        ids = [s.id for s in self.samples]
        if len(ids) != len(set(ids)):
            raise ValueError(f"sample ids must be unique: {ids}")
        return self

    @property
    def scores(self) -> list[int]:
        return sorted(level.score for level in self.levels)


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
    kappa: float
    weighting: str
    total: int  # samples graded; candidates see only the kappa, never a master grade

    @property
    def label(self) -> str:
        return agreement_label(self.kappa)


def grade(rubric: RubricSet, login: str, grades: dict[str, int]) -> Result:
    """Score a candidate's grading of every sample of *rubric*; missing or unknown grades are refused."""
    missing = [s.id for s in rubric.samples if s.id not in grades]
    if missing:
        raise CalibrationError(f"모든 예시를 채점해 주세요. 빠진 예시: {', '.join(missing)}")
    wrong = [sid for sid, g in grades.items() if g not in rubric.scores]
    if wrong:
        raise CalibrationError(f"루브릭에 없는 점수예요: {', '.join(wrong)}")
    mine = [grades[s.id] for s in rubric.samples]
    master = [s.master for s in rubric.samples]
    return Result(login, rubric.id, cohen_kappa(mine, master, rubric.scores), WEIGHTING, len(master))


def record(settings: Settings, result: Result, recorded_by: str) -> None:
    """Store the kappa where the certification policy reads it (``certification.store``, table calibration)."""
    Store.of(settings).record_calibration(result.login, result.kappa, result.total, recorded_by)


def latest_kappas(settings: Settings, logins: Sequence[str]) -> dict[str, float]:
    """The latest stored kappa of each of *logins* that has one."""
    store = Store.of(settings)
    return {login: kappa for login in logins if (kappa := store.calibration_kappa(login)) is not None}
