"""The admin's settings file (``lab.toml``): one schema, one loader.

Everything an admin may change lives in one TOML file.  The schema rejects unknown keys, so a typo
fails loudly at start-up instead of being silently ignored (the lesson of TLJH's config schema).
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS = REPO_ROOT / "hub" / "lab.toml"
SETTINGS_ENV = "DONGHAENG_SETTINGS"
COURSE_ID = re.compile(r"^[a-z][a-z0-9]{1,15}(-[a-z0-9]{1,15}){0,2}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Course(_Strict):
    id: str = Field(description="Short ASCII id used in paths, groups and nbgrader (e.g. 'ai-basics').")
    title: str = Field(description="Title learners see (Korean).")
    assignments: str | None = Field(
        default=None,
        description="Folder of nbgrader source assignments; default: assignments/<id> in this repo.",
    )

    @field_validator("id")
    @classmethod
    def _ascii_id(cls, value: str) -> str:
        if not COURSE_ID.match(value):
            raise ValueError("course id must be lower-case ASCII like 'ai-basics' (2-16 chars per part)")
        return value

    @property
    def grader_user(self) -> str:
        """System account (and hub service name) that owns this course's nbgrader directory."""
        return f"grader-{self.id}"


class Lab(_Strict):
    data_dir: Path = Path("/srv/donghaeng")
    ip: str = "127.0.0.1"
    port: int = 8000
    spawner: Literal["local"] = "local"
    default_language: Literal["ko", "en"] = "ko"
    user_prefix: Path = Field(
        default=Path("/opt/donghaeng/venv"),
        description="Python environment learners' servers run from; must be readable by every account.",
    )
    home_root: Path = Path("/home")
    learner_group: str = "donghaeng"
    autograde_timeout: int = Field(default=30, description="Seconds one cell may run during autograde.")
    min_password_length: int = 8


class Settings(_Strict):
    lab: Lab = Lab()
    courses: list[Course] = Field(default_factory=list)
    source: Path | None = None

    @field_validator("courses")
    @classmethod
    def _unique_courses(cls, courses: list[Course]) -> list[Course]:
        ids = [c.id for c in courses]
        if len(ids) != len(set(ids)):
            raise ValueError(f"course ids must be unique: {ids}")
        return courses

    def course(self, course_id: str) -> Course:
        for course in self.courses:
            if course.id == course_id:
                return course
        known = ", ".join(c.id for c in self.courses) or "(없음)"
        raise KeyError(f"'{course_id}' 과정이 설정에 없어요. 있는 과정: {known}")

    @cached_property
    def paths(self) -> "LabPaths":
        return LabPaths(self.lab.data_dir)

    def assignments_dir(self, course: Course) -> Path:
        if course.assignments:
            base = self.source.parent if self.source else REPO_ROOT
            return (base / course.assignments).resolve()
        return REPO_ROOT / "assignments" / course.id


class LabPaths:
    """Where the lab keeps its state; derived from ``lab.data_dir`` only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"  # hub db, cookie secret, cohort db: root only
        self.hub_db = self.state / "jupyterhub.sqlite"
        self.cohort_db = self.state / "cohort.sqlite"
        self.cookie_secret = self.state / "jupyterhub_cookie_secret"
        self.passwords = self.state / "initial-passwords"
        self.courses = root / "courses"
        self.exchange = root / "exchange"
        self.jupyter_config = root / "jupyter-config"
        self.learner_config = root / "jupyter-config-learner"

    def course_dir(self, course_id: str) -> Path:
        return self.courses / course_id


class SettingsError(Exception):
    """The settings file is missing or invalid; the message says where and why."""


def load_settings(path: Path | str | None = None) -> Settings:
    """Load ``lab.toml`` from *path*, ``$DONGHAENG_SETTINGS`` or the repo default."""
    path = Path(path or os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SettingsError(f"설정 파일이 없어요 / settings file not found: {path}") from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"설정 파일 문법 오류 / invalid TOML in {path}: {e}") from e
    try:
        return Settings(**data, source=path.resolve())
    except ValidationError as e:
        lines = [f"설정 파일에 잘못된 값이 있어요 / invalid settings in {path}:"]
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  - {where}: {err['msg']}")
        raise SettingsError("\n".join(lines)) from e
