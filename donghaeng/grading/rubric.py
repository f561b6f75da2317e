"""Deterministic rubric grading of learners' prompts, from rubric files trainers edit.

A rubric is a TOML file in ``graders/rubrics/`` (see ``graders/rubrics/README.md``)::

    title = "프롬프트 채점 기준"
    text_field = "prompt"          # for a saved playground answer (a dict): the whole prompt

    [[criteria]]
    id = "task"
    name = "작업"
    check = "cues"                 # cues | facts | examples | runs | hangul | length | no_pii
    field = "task"                 # optional: one field of a dict answer
    cues = ["써 주세요", "만들어 주세요"]
    points = 1
    ok = "AI에게 시킬 일이 분명해요."
    missing = "무엇을 해 달라는지 '…해 주세요'처럼 써 주세요."

Checks (all deterministic, no model involved):

* ``cues``: at least ``min_cues`` of the cue words appear (spacing ignored: ``써주세요`` matches
  ``써 주세요``), and the text has at least ``min_chars`` characters when that is given;
* ``facts``: every group of ``facts`` is there (a group is a list of ways to say one fact, any one
  of them will do): what a scenario says must reach the prompt;
* ``examples``: at least ``min_count`` worked examples, each a quoted passage ("…", “…”, '…', 「…」)
  or a line starting with ``예시``/``예``/``보기`` (``예시 1:``, ``예)``), with ``min_chars`` characters of
  its own (default 10): the few-shot examples a base model continues;
* ``runs``: the saved answer's ``field`` (a playground's ``runs``) is at least ``min_count``;
* ``hangul``: Hangul is at least ``min_share`` of the letters (a Korean prompt);
* ``length``: between ``min_chars`` and ``max_chars`` characters;
* ``no_pii``: :func:`donghaeng.common.privacy.find_pii` finds nothing (of ``pii_kinds``, default all);
  with ``allow_landlines`` an area-code phone number (``02-…``, ``031-…``: a shop's or an office's
  landline) is business information and allowed, while mobile and safe numbers still count.

``in_sentences = true`` (``cues`` and ``facts``) looks only at sentences (see :func:`sentences`): a
piece of text between ``.``/``!``/``?``/line ends with two to 25 words that ends like a Korean sentence
and whose words are tied together by particles.  A keyword salad (cue words in a row, even ending in
"써 주세요") then earns nothing there.

Feedback texts may use ``{chars}`` (length), ``{share}`` (Hangul %), ``{found}`` (what was found),
``{absent}`` (the facts not found), ``{count}`` (examples or runs counted), ``{min_count}``,
``{min_chars}``, ``{max_chars}``.  A rubric file with a mistake is refused with a Korean message that
names the file and the key.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from donghaeng.common.privacy import KIND_LABELS, find_pii
from donghaeng.common.settings import REPO_ROOT
from donghaeng.grading.report import Line, Report

__all__ = ["RUBRICS_DIR", "Criterion", "Rubric", "RubricError", "grade_prompt", "grade_text", "load_rubric"]

RUBRICS_DIR = REPO_ROOT / "graders" / "rubrics"
PLACEHOLDERS = {"chars", "share", "found", "absent", "count", "min_count", "min_chars", "max_chars"}
MSG_NO_ANSWER = "아직 저장한 프롬프트가 없어요. 놀이터에서 '이 프롬프트를 답으로 저장'을 눌렀는지 확인해 주세요."


class RubricError(ValueError):
    """A rubric file is missing or invalid; the Korean message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str = Field(min_length=1)
    check: Literal["cues", "facts", "examples", "runs", "hangul", "length", "no_pii"]
    points: float = Field(gt=0)
    ok: str = Field(min_length=1)
    missing: str = Field(min_length=1)
    field: str | None = None
    cues: list[str] = []
    min_cues: int = Field(default=1, ge=1)
    facts: list[list[str]] = []
    in_sentences: bool = False
    min_count: int = Field(default=1, ge=1)
    min_share: float | None = Field(default=None, gt=0, le=1)
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=1)
    pii_kinds: list[str] | None = None
    allow_landlines: bool = False

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
        needs = {"cues": ("cues",), "facts": ("facts",), "runs": ("field",), "hangul": ("min_share",),
                 "length": ("min_chars", "max_chars")}
        for key in needs.get(self.check, ()):
            if not getattr(self, key):
                raise ValueError(f"check = \"{self.check}\" 에는 '{key}' 값이 꼭 있어야 해요")
        if any(not group or not all(str(way).strip() for way in group) for group in self.facts):
            raise ValueError("facts의 묶음마다 말이 하나 이상 있어야 하고, 빈 말은 안 돼요")
        if self.in_sentences and self.check not in ("cues", "facts"):
            raise ValueError("in_sentences는 check = \"cues\" 나 \"facts\" 에만 쓸 수 있어요")
        if self.allow_landlines and self.check != "no_pii":
            raise ValueError("allow_landlines는 check = \"no_pii\" 에만 쓸 수 있어요")
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


MAX_SENTENCE_WORDS = 25  # longer "sentences" are cue words strung together
_SENTENCE_SPLIT = re.compile(r"[.!?。\n]+")
_SENTENCE_END = re.compile(r"[가-힣]*(?:요|다|죠|까|네)$")
# A word that carries a particle or an ending (예약을, 손님에게, 6일까지, 알리는): what ties a sentence together.
_JOINED = re.compile(r"[가-힣](?:은|는|이|가|을|를|에|께|의|로|도|와|과|만|서|게|지|터|고|며|면|한|할|된|인|던|요|다|해)$")
_CLOSERS = "\"'“”‘’」』)]》 ~…"
_QUOTED = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”|'([^'\n]+)'|‘([^’\n]+)’|「([^」\n]+)」|『([^』\n]+)』")
_EXAMPLE_LINE = re.compile(r"^\s*(?:[-*·]\s*)?(?:예시|예|보기)\s*\d*\s*[:)\].]\s*(.+)$", re.MULTILINE)
# Landlines: Seoul (02) and the provincial area codes; not mobiles (010…), VoIP (070) or safe numbers (0505).
_LANDLINE = re.compile(r"^(?:82)?0?(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4])\d{7,8}$")


def sentences(text: str) -> list[str]:
    """The pieces of *text* that read as sentences.

    A sentence has 2 to 25 words, ends like a Korean sentence (…요, …다, …죠, …까, …네), and at least a
    quarter of the words before the last carry a particle or an ending: nouns in a row followed by
    "써 주세요" are a list of keywords, not a sentence.
    """
    found = []
    for piece in _SENTENCE_SPLIT.split(text):
        words = [word.strip(_CLOSERS + ",:;") for word in piece.split()]
        words = [word for word in words if word]
        if not 2 <= len(words) <= MAX_SENTENCE_WORDS or not _SENTENCE_END.search(words[-1]):
            continue
        if sum(1 for word in words[:-1] if _JOINED.search(word)) >= max(1, (len(words) - 1) // 4):
            found.append(" ".join(words))
    return found


def examples(text: str, min_chars: int = 10) -> list[str]:
    """Worked examples in *text*: quoted passages and ``예시:`` lines with *min_chars* characters or more."""
    found = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
    for m in _EXAMPLE_LINE.finditer(text):
        line = m.group(1)
        if not any(quoted in line for quoted in found):  # a quoted example on an 예시 line counts once
            found.append(line)
    return [e.strip() for e in found if len(e.strip()) >= min_chars]


def is_landline(number: str) -> bool:
    """Whether a phone number has an area code (an office's or a shop's line, not a person's mobile)."""
    return bool(_LANDLINE.match("".join(ch for ch in number if ch.isdigit())))


def _count(value: str) -> int:
    """A count saved in an answer (``"2"``); anything else, hand-edited or not, counts as 0."""
    try:
        return int(float(value))
    except (ValueError, OverflowError):
        return 0


def _judge(criterion: Criterion, text: str) -> tuple[bool, dict[str, Any]]:
    chars = len(text.strip())
    facts: dict[str, Any] = {"chars": chars, "share": round(hangul_share(text) * 100), "min_count": criterion.min_count,
                             "min_chars": criterion.min_chars, "max_chars": criterion.max_chars, "found": "",
                             "absent": "", "count": 0}
    searched = " ".join(sentences(text)) if criterion.in_sentences else text
    if criterion.check == "cues":
        squashed = _squash(searched)
        found = [cue for cue in criterion.cues if _squash(cue) in squashed]
        facts["found"] = ", ".join(found)
        ok = len(found) >= criterion.min_cues and chars >= (criterion.min_chars or 0)
    elif criterion.check == "facts":
        squashed = _squash(searched)
        present = [next((way for way in group if _squash(way) in squashed), None) for group in criterion.facts]
        facts["found"] = ", ".join(way for way in present if way)
        facts["absent"] = ", ".join(group[0] for group, way in zip(criterion.facts, present) if way is None)
        ok = all(present)
    elif criterion.check == "examples":
        facts["count"] = len(examples(text, criterion.min_chars or 10))
        ok = facts["count"] >= criterion.min_count
    elif criterion.check == "runs":
        facts["count"] = _count(text.strip() or "0")
        ok = facts["count"] >= criterion.min_count
    elif criterion.check == "hangul":
        ok = hangul_share(text) >= (criterion.min_share or 0)
    elif criterion.check == "length":
        ok = (criterion.min_chars or 0) <= chars <= (criterion.max_chars or chars)
    else:  # no_pii
        kinds = set(criterion.pii_kinds or KIND_LABELS)
        found_pii = [f for f in find_pii(text) if f.kind in kinds
                     and not (criterion.allow_landlines and f.kind == "phone" and is_landline(f.text))]
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
