"""Deterministic rubric grading of learners' prompts, from rubric files trainers edit.

A rubric is a TOML file in ``graders/rubrics/`` (see ``graders/rubrics/README.md``)::

    title = "프롬프트 채점 기준"
    text_field = "prompt"          # for a saved playground answer (a dict): the whole prompt

    [[criteria]]
    id = "task"
    name = "작업"
    check = "cues"                 # cues | hangul | length | no_pii
    field = "task"                 # optional: one field of a dict answer
    cues = ["써 주세요", "만들어 주세요"]
    points = 1
    ok = "AI에게 시킬 일이 분명해요."
    missing = "무엇을 해 달라는지 '…해 주세요'처럼 써 주세요."

Checks (all deterministic, no model involved):

* ``cues``: at least ``min_cues`` of the cue words appear (spacing ignored: ``써주세요`` matches
  ``써 주세요``), and the text has at least ``min_chars`` characters when that is given;
* ``hangul``: Hangul is at least ``min_share`` of the letters (a Korean prompt);
* ``length``: between ``min_chars`` and ``max_chars`` characters;
* ``no_pii``: :func:`donghaeng.privacy.find_pii` finds nothing (of ``pii_kinds``, default all).

Feedback texts may use ``{chars}`` (length), ``{share}`` (Hangul %), ``{found}`` (what was found),
``{min_chars}``, ``{max_chars}``.  A rubric file with a mistake is refused with a Korean message that
names the file and the key.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..privacy import KIND_LABELS, find_pii
from ..settings import REPO_ROOT
from .report import Line, Report

__all__ = ["RUBRICS_DIR", "Criterion", "Rubric", "RubricError", "grade_prompt", "grade_text", "load_rubric"]

RUBRICS_DIR = REPO_ROOT / "graders" / "rubrics"
PLACEHOLDERS = {"chars", "share", "found", "min_chars", "max_chars"}
MSG_NO_ANSWER = "아직 저장한 프롬프트가 없어요. 놀이터에서 '이 프롬프트를 답으로 저장'을 눌렀는지 확인해 주세요."


class RubricError(ValueError):
    """A rubric file is missing or invalid; the Korean message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str = Field(min_length=1)
    check: Literal["cues", "hangul", "length", "no_pii"]
    points: float = Field(gt=0)
    ok: str = Field(min_length=1)
    missing: str = Field(min_length=1)
    field: str | None = None
    cues: list[str] = []
    min_cues: int = Field(default=1, ge=1)
    min_share: float | None = Field(default=None, gt=0, le=1)
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=1)
    pii_kinds: list[str] | None = None

    @field_validator("ok", "missing")
    @classmethod
    def _known_placeholders(cls, text: str) -> str:
        names = {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}
        unknown = names - PLACEHOLDERS
        if unknown:
            raise ValueError(f"모르는 자리표시 {sorted(unknown)} (쓸 수 있는 것: {sorted(PLACEHOLDERS)})")
        return text

    @field_validator("pii_kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        unknown = set(kinds or []) - set(KIND_LABELS)
        if unknown:
            raise ValueError(f"모르는 개인정보 종류 {sorted(unknown)} (쓸 수 있는 것: {sorted(KIND_LABELS)})")
        return kinds

    @model_validator(mode="after")
    def _what_the_check_needs(self) -> Criterion:
        needs = {"cues": ("cues",), "hangul": ("min_share",), "length": ("min_chars", "max_chars")}
        for key in needs.get(self.check, ()):
            if not getattr(self, key):
                raise ValueError(f"check = \"{self.check}\" 에는 '{key}' 값이 꼭 있어야 해요")
        if self.min_cues > max(len(self.cues), 1):
            raise ValueError(f"min_cues({self.min_cues})가 cues 개수({len(self.cues)})보다 많아요")
        if self.min_chars is not None and self.max_chars is not None and self.min_chars > self.max_chars:
            raise ValueError("min_chars가 max_chars보다 커요")
        return self


class Rubric(_Strict):
    title: str = Field(min_length=1)
    text_field: str = "prompt"
    criteria: list[Criterion] = Field(min_length=1)

    @field_validator("criteria")
    @classmethod
    def _unique_ids(cls, criteria: list[Criterion]) -> list[Criterion]:
        ids = [c.id for c in criteria]
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        if doubled:
            raise ValueError(f"id가 겹쳐요: {doubled}")
        return criteria

    @property
    def total(self) -> float:
        return sum(c.points for c in self.criteria)


_PYDANTIC_KO = {
    "missing": "꼭 있어야 하는 항목이 없어요",
    "extra_forbidden": "모르는 항목이에요(철자를 확인해 주세요)",
    "literal_error": "정해진 값 중 하나여야 해요",
    "string_type": "글자(따옴표로 감싼 값)여야 해요",
    "string_too_short": "비어 있으면 안 돼요",
    "string_pattern_mismatch": "영어 소문자·숫자·-·_ 로 써 주세요",
    "float_parsing": "숫자여야 해요",
    "float_type": "숫자여야 해요",
    "int_parsing": "정수여야 해요",
    "int_type": "정수여야 해요",
    "greater_than": "0보다 커야 해요",
    "greater_than_equal": "값이 너무 작아요",
    "less_than_equal": "값이 너무 커요",
    "list_type": "목록([\"…\", \"…\"])이어야 해요",
    "too_short": "하나 이상 있어야 해요",
}


def _korean_errors(source: str, error: ValidationError) -> str:
    lines = [f"채점 기준 파일에 잘못된 곳이 있어요: {source}"]
    for e in error.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(파일 전체)"
        if e["type"] == "value_error":
            why = str(e.get("ctx", {}).get("error", e["msg"]))
        else:
            why = _PYDANTIC_KO.get(e["type"], e["msg"])
        lines.append(f"  - '{loc}': {why}")
    return "\n".join(lines)


def parse_rubric(text: str, source: str = "<rubric>") -> Rubric:
    """A :class:`Rubric` from TOML *text*; :class:`RubricError` (Korean) when it is invalid."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RubricError(f"채점 기준 파일의 TOML 문법이 틀렸어요: {source} ({e})") from e
    try:
        return Rubric(**data)
    except ValidationError as e:
        raise RubricError(_korean_errors(source, e)) from e


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int) -> Rubric:
    return parse_rubric(path.read_text(encoding="utf-8"), str(path))


def load_rubric(name_or_path: str | Path) -> Rubric:
    """The rubric ``graders/rubrics/<name>.toml`` (or a file path)."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = RUBRICS_DIR / f"{name_or_path}.toml"
    try:
        return _load(path, path.stat().st_mtime_ns)
    except FileNotFoundError as e:
        known = ", ".join(sorted(p.stem for p in RUBRICS_DIR.glob("*.toml"))) or "(없음)"
        raise RubricError(f"채점 기준 파일이 없어요: {path} (있는 것: {known})") from e


# ------------------------------------------------------------------------------------ grading
def hangul_share(text: str) -> float:
    """Share of Hangul among the letters of *text* (0 when there are no letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    hangul = sum(1 for ch in letters if "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff"
                 or "\u3130" <= ch <= "\u318f")
    return hangul / len(letters)


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def _judge(criterion: Criterion, text: str) -> tuple[bool, dict[str, Any]]:
    chars = len(text.strip())
    facts: dict[str, Any] = {"chars": chars, "share": round(hangul_share(text) * 100),
                             "min_chars": criterion.min_chars, "max_chars": criterion.max_chars, "found": ""}
    if criterion.check == "cues":
        squashed = _squash(text)
        found = [cue for cue in criterion.cues if _squash(cue) in squashed]
        facts["found"] = ", ".join(found)
        ok = len(found) >= criterion.min_cues and chars >= (criterion.min_chars or 0)
    elif criterion.check == "hangul":
        ok = hangul_share(text) >= (criterion.min_share or 0)
    elif criterion.check == "length":
        ok = (criterion.min_chars or 0) <= chars <= (criterion.max_chars or chars)
    else:  # no_pii
        kinds = set(criterion.pii_kinds or KIND_LABELS)
        found_pii = [f for f in find_pii(text) if f.kind in kinds]
        facts["found"] = ", ".join(dict.fromkeys(f.name for f in found_pii))
        ok = not found_pii
    return ok, facts


def grade_text(fields: Mapping[str, str], rubric: Rubric) -> Report:
    """Grade the texts of one answer; *fields* maps field names to text ("" when absent)."""
    report = Report(rubric.title)
    for criterion in rubric.criteria:
        text = fields.get(criterion.field or rubric.text_field, "")
        ok, facts = _judge(criterion, text)
        feedback = (criterion.ok if ok else criterion.missing).format(**facts)
        report.lines.append(Line(criterion.name, criterion.points if ok else 0.0, criterion.points, feedback))
    return report


def grade_prompt(answer: Any, rubric: str | Path | Rubric) -> Report:
    """Grade a learner's prompt: plain text, or a saved playground answer (a dict of fields).

    No answer at all (``None``, blank, or not text) scores zero with a Korean reason.
    """
    rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    if isinstance(answer, str):
        fields = {rubric.text_field: answer}
        fields.update({c.field: answer for c in rubric.criteria if c.field})
    elif isinstance(answer, Mapping):
        fields = {str(k): str(v) if v is not None else "" for k, v in answer.items()}
    else:
        fields = {}
    if not any(str(v).strip() for v in fields.values()):
        report = Report(rubric.title, note=MSG_NO_ANSWER)
        report.lines = [Line(c.name, 0.0, c.points, "저장된 답이 없어서 0점이에요.") for c in rubric.criteria]
        return report
    return grade_text(fields, rubric)
