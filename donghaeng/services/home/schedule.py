"""A course's module schedule: ``assignments/<course>/schedule.toml`` (title, estimated minutes, class start,
deadline)."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from donghaeng.common.settings import Course, Settings

SCHEDULE_FILE = "schedule.toml"


class Module(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = None
    minutes: int | None = None
    class_start: datetime | None = None  # the class where the module is taught: servers are started before
    deadline: datetime | None = None

    @field_validator("class_start", "deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a time needs a time zone, e.g. 2027-03-12T18:00:00+09:00")
        return value


class ScheduleError(Exception):
    pass


def schedule_path(settings: Settings, course: Course) -> Path:
    return settings.assignments_dir(course) / SCHEDULE_FILE


def load_schedule(settings: Settings, course: Course) -> dict[str, Module]:
    """Modules by assignment id; a course without a schedule file has an empty schedule."""
    path = schedule_path(settings, course)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise ScheduleError(f"일정 파일 문법 오류 / invalid TOML in {path}: {e}") from e
    try:
        return {name: Module(**entry) for name, entry in data.items()}
    except (ValidationError, TypeError) as e:
        raise ScheduleError(f"일정 파일에 잘못된 값이 있어요 / invalid schedule {path}: {e}") from e


def nbgrader_duedate(deadline: datetime) -> str:
    """The deadline as nbgrader's ``--duedate`` (UTC)."""
    return deadline.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


KST = timezone(timedelta(hours=9), "KST")
WEEKDAYS = "월화수목금토일"


def korean_time(moment: datetime) -> str:
    """'3월 12일 (금) 오후 6:00' in Korean time, as learners read a deadline or a receipt."""
    local = moment.astimezone(KST)
    half = "오전" if local.hour < 12 else "오후"
    hour = local.hour % 12 or 12
    return f"{local.month}월 {local.day}일 ({WEEKDAYS[local.weekday()]}) {half} {hour}:{local.minute:02d}"
