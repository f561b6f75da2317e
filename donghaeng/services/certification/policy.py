"""The certification policy: a TOML file trainers read (``graders/certification.toml``), one schema."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from donghaeng.common.settings import REPO_ROOT, Settings

DEFAULT_POLICY = REPO_ROOT / "graders" / "certification.toml"
LEVEL_ID = re.compile(r"^[a-z][a-z0-9]{0,15}(-[a-z0-9]{1,15}){0,3}$")


class CertificationError(Exception):
    """A certification step cannot be done; the message is Korean and says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssignmentRule(_Strict):
    name: str = Field(description="nbgrader assignment name, e.g. 'm3-prompting'.")
    min_percent: float | None = Field(default=None, ge=0, le=100)
    min_points: float | None = Field(default=None, ge=0)


class Level(_Strict):
    id: str = Field(description="ASCII id used in serial numbers and URLs.")
    name: str = Field(description="Korean name printed on the certificate.")
    description: str = ""
    course: str = Field(description="Course whose gradebook is read.")
    prerequisite: str | None = None
    unlocks: list[str] = Field(default_factory=list)
    assignments: list[AssignmentRule] = Field(default_factory=list)
    min_total_percent: float | None = Field(default=None, ge=0, le=100)
    manual_grading_done: bool = True
    min_attendance: int | None = Field(default=None, ge=0)
    min_calibration_kappa: float | None = Field(default=None, ge=-1, le=1)
    min_teachback_checklist: int | None = Field(
        default=None, ge=1, description="Checklist items a trainer ticked while watching the live teach-back.")

    @field_validator("id")
    @classmethod
    def _ascii_id(cls, value: str) -> str:
        if not LEVEL_ID.match(value):
            raise ValueError("id는 'ai-basics'처럼 영문 소문자·숫자·'-'로 써 주세요")
        return value


class Calibration(_Strict):
    """How rubric calibration runs: which rubric sets count, how many samples an attempt draws, how many tries."""

    rubrics: list[str] = Field(default_factory=list, description="Sets in graders/calibration; empty: every set.")
    samples_per_attempt: int = Field(default=10, ge=5)
    attempts: int = Field(default=3, ge=1)


class ChecklistItem(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    text: str = Field(min_length=2, description="What the observing trainer looks for, in Korean.")


class TeachBack(_Strict):
    """The live teach-back a trainer watches and records in the dashboard."""

    checklist: list[ChecklistItem] = Field(min_length=1)


class Policy(_Strict):
    levels: list[Level]
    calibration: Calibration = Field(default_factory=Calibration)
    teachback: TeachBack | None = None
    source: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        seen: set[str] = set()
        for level in self.levels:
            if level.id in seen:
                raise ValueError(f"단계 아이디 '{level.id}'가 두 번 나와요")
            if level.prerequisite and level.prerequisite not in seen:
                raise ValueError(f"'{level.id}'의 선수 단계 '{level.prerequisite}'는 그보다 앞에 있어야 해요")
            if level.min_teachback_checklist is not None:
                if self.teachback is None:
                    raise ValueError(f"'{level.id}'에 min_teachback_checklist가 있으면 [teachback] 점검표도 있어야 해요")
                if level.min_teachback_checklist > len(self.teachback.checklist):
                    raise ValueError(f"'{level.id}'의 min_teachback_checklist가 점검표 항목 수"
                                     f"({len(self.teachback.checklist)}개)보다 많아요")
            seen.add(level.id)
        if self.teachback is not None:
            ids = [item.id for item in self.teachback.checklist]
            if len(ids) != len(set(ids)):
                raise ValueError("teachback 점검표의 id가 겹쳐요")
        return self

    def level(self, key: str) -> Level:
        """The level with id or Korean name *key*."""
        for level in self.levels:
            if key in (level.id, level.name):
                return level
        known = ", ".join(f"{lv.id}({lv.name})" for lv in self.levels)
        raise CertificationError(f"'{key}' 단계가 기준 파일에 없어요. 있는 단계: {known}")


def policy_path(settings: Settings) -> Path:
    configured = settings.certification.policy
    if configured is None:
        return DEFAULT_POLICY
    base = settings.source.parent if settings.source else REPO_ROOT
    return (base / configured).resolve()


def load_policy(settings: Settings) -> Policy:
    """Read and check the policy; every problem is reported in Korean with where it is."""
    path = policy_path(settings)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CertificationError(f"수료 기준 파일이 없어요: {path}") from e
    except tomllib.TOMLDecodeError as e:
        raise CertificationError(f"수료 기준 파일의 문법이 틀렸어요 ({path}): {e}") from e
    try:
        policy = Policy(**data, source=path)
    except ValidationError as e:
        problems = "\n".join(f"  - {'.'.join(map(str, x['loc'])) or '(전체)'}: {x['msg']}" for x in e.errors())
        raise CertificationError(f"수료 기준 파일에 잘못된 값이 있어요 ({path}):\n{problems}") from e
    courses = {course.id for course in settings.courses}
    for level in policy.levels:
        for course in (level.course, *level.unlocks):
            if course not in courses:
                raise CertificationError(f"'{level.id}' 단계의 과정 '{course}'가 lab.toml에 없어요.")
    return policy
