"""Self-check questions for learners' notebooks (in the spirit of Kaggle's learntools).

A notebook declares a question once and the learner calls its methods::

    from donghaeng.toolkit.exercises import Question

    q1 = Question(
        "m3.q1",
        var="tokens",                                   # the learner's variable, read at check time
        check=lambda v: (len(v) == 5, "토큰이 5개여야 해요."),
        hints=["tokenize() 결과를 그대로 담아 보세요.", "tokens = client.tokenize(문장)"],
    )
    q1.check()      # 정답이에요! 🎉  /  아직이에요: …  /  아직 답을 쓰지 않았어요 — …
    q1.hint()       # 힌트 1
    q1.solution()   # the trainer's answer, once released

``check`` receives the learner's value and returns ``(ok, message)``, a bare ``bool``, or raises
``AssertionError("message")``.  The value comes from the notebook's globals (``var=``) or from a
widget answer saved with :func:`donghaeng.toolkit.answers.save_answer` (``answer_id=``).  ``...``, ``None``,
blank text and the starter value given as ``starter=`` count as "not answered yet".

Solutions are not in the learner's copy.  Trainers release them as a JSON file
``$DONGHAENG_SOLUTIONS_DIR/<course>/<assignment>.json`` (default root ``/srv/donghaeng/solutions``)
holding ``{"m3.q1": "text"}`` or ``{"m3.q1": {"text": "…", "code": "…"}}``; until that file exists
and is readable, :meth:`Question.solution` says the trainer will share the answer after the deadline.
The course and assignment come from the arguments, ``$DONGHAENG_COURSE`` / ``$DONGHAENG_ASSIGNMENT``
or the notebook's folder (``~/<course>/<assignment>/``, where nbgrader fetches assignments).

Every method shows its result (HTML when a notebook renders it, plain Korean text otherwise) and
never lets an exception reach the learner.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from IPython.display import display

from donghaeng.toolkit import answers
__all__ = [
    "ASSIGNMENT_ENV",
    "COURSE_ENV",
    "DEFAULT_SOLUTIONS_DIR",
    "SOLUTIONS_ENV",
    "Question",
    "load_solution",
    "solutions_path",
]

log = logging.getLogger(__name__)

SOLUTIONS_ENV = "DONGHAENG_SOLUTIONS_DIR"
COURSE_ENV = "DONGHAENG_COURSE"
ASSIGNMENT_ENV = "DONGHAENG_ASSIGNMENT"
DEFAULT_SOLUTIONS_DIR = Path("/srv/donghaeng/solutions")

MSG_CORRECT = "정답이에요! 🎉"
MSG_NOT_YET = "아직이에요: {detail}"
MSG_NOT_YET_DEFAULT = "답을 한 번 더 살펴봐 주세요. 막히면 .hint()로 힌트를 볼 수 있어요."
MSG_EMPTY = "아직 답을 쓰지 않았어요 — 위 칸을 채워 주세요."
MSG_MISSING_VAR = (
    "아직 답을 쓰지 않았어요 — 위 칸을 채워 주세요. "
    "(답을 쓴 칸을 실행했는지도 확인해 주세요 — 아직 '{var}' 변수가 없어요.)"
)
MSG_NO_WIDGET_ANSWER = "아직 답을 저장하지 않았어요 — 위에서 답을 고른 뒤 '저장하기'를 눌러 주세요."
MSG_CHECK_FAILED = "답을 확인하다가 문제가 생겼어요. 답의 모양(글자인지, 숫자인지, 목록인지)을 다시 확인해 주세요."
MSG_HINT = "힌트 {n}: {text}"
MSG_HINT_LAST = "힌트는 {count}개가 전부예요."
MSG_NO_HINTS = "이 문제는 준비된 힌트가 없어요. 막히면 강사님께 물어봐 주세요."
MSG_SOLUTION_LATER = "정답은 마감 뒤에 강사님이 알려 주실 거예요. 공개되면 이 칸을 다시 실행해 보세요."

_FONT = "'Noto Sans KR','Malgun Gothic','Apple SD Gothic Neo',sans-serif"
_STYLES = {  # kind: (border, background, heading)
    "correct": ("#2e7d32", "#edf7ed", "정답"),
    "incorrect": ("#b26a00", "#fff6e5", "다시 해 봐요"),
    "empty": ("#546e7a", "#f3f6f8", "아직 답이 없어요"),
    "hint": ("#1565c0", "#eaf2fc", "힌트"),
    "solution": ("#6a1b9a", "#f5edf9", "정답 풀이"),
    "error": ("#b00020", "#fdecee", "확인하지 못했어요"),
}

_NOTHING = object()
_SAFE_NAME = re.compile(r"^[\w.-]+$")


class Feedback:
    """A message shown in a notebook: styled HTML in the browser, plain text elsewhere."""

    def __init__(self, kind: str, text: str, code: str | None = None) -> None:
        self.kind = kind
        self.text = text
        self.code = code

    def _repr_html_(self) -> str:
        border, background, heading = _STYLES.get(self.kind, _STYLES["hint"])
        role = "alert" if self.kind == "error" else "status"
        body = html.escape(self.text).replace("\n", "<br>")
        code = ""
        if self.code:
            code = (
                '<pre style="background:#fff;border:1px solid #d0d7de;padding:0.5em;margin:0.4em 0 0;'
                f'white-space:pre-wrap"><code>{html.escape(self.code)}</code></pre>'
            )
        return (
            f'<div role="{role}" aria-live="polite" style="font-family:{_FONT};line-height:1.6;'
            f"word-break:keep-all;border-left:4px solid {border};background:{background};color:#1f2328;"
            f'padding:0.5em 0.8em;margin:0.4em 0;border-radius:4px">'
            f'<span style="font-weight:bold;color:{border}">{html.escape(heading)}</span> · {body}{code}</div>'
        )

    def __repr__(self) -> str:
        return self.text + (f"\n{self.code}" if self.code else "")


def _show(feedback: Feedback) -> None:
    try:
        display(feedback)
    except Exception:  # displaying must never break a learner's cell
        log.exception("could not display feedback")


# --- solutions ----------------------------------------------------------------------------------


def _course_and_assignment(course: str | None, assignment: str | None) -> tuple[str, str] | None:
    course = course or os.environ.get(COURSE_ENV) or None
    assignment = assignment or os.environ.get(ASSIGNMENT_ENV) or None
    if course is None or assignment is None:
        try:
            cwd = Path.cwd()
        except OSError:
            return None
        # nbgrader (path_includes_course) fetches to ~/<course>/<assignment>/.
        assignment = assignment or cwd.name
        course = course or cwd.parent.name
    if not (course and assignment and _SAFE_NAME.match(course) and _SAFE_NAME.match(assignment)):
        return None
    if course in (".", "..") or assignment in (".", ".."):
        return None
    return course, assignment


def solutions_path(course: str | None = None, assignment: str | None = None) -> Path | None:
    """Where the released solutions of *course*/*assignment* live (``None`` if unknown)."""
    names = _course_and_assignment(course, assignment)
    if names is None:
        return None
    root = Path(os.environ.get(SOLUTIONS_ENV) or DEFAULT_SOLUTIONS_DIR)
    return root / names[0] / f"{names[1]}.json"


def load_solution(key: str, course: str | None = None, assignment: str | None = None) -> dict[str, str] | None:
    """The released solution ``{"text": …, "code": …}`` for *key*, or ``None`` if not released."""
    path = solutions_path(course, assignment)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError):
        return None  # not released yet (or not readable by learners yet)
    except (OSError, UnicodeDecodeError, ValueError):
        log.warning("solutions file %s could not be read", path, exc_info=True)
        return None
    if isinstance(data, dict) and isinstance(data.get("solutions"), dict):
        data = data["solutions"]
    entry = data.get(key) if isinstance(data, dict) else None
    if isinstance(entry, str) and entry.strip():
        return {"text": entry, "code": ""}
    if isinstance(entry, dict) and (entry.get("text") or entry.get("code")):
        return {"text": str(entry.get("text") or ""), "code": str(entry.get("code") or "")}
    return None


# --- questions ----------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    if value is None or value is Ellipsis:
        return True
    if isinstance(value, str):
        return not value.strip() or value.strip() in ("...", "…")
    return False


class Question:
    """One self-check question (see the module docstring)."""

    def __init__(
        self,
        id: str,  # noqa: A002 - the natural name in notebooks
        *,
        check: Callable[[Any], Any],
        var: str | None = None,
        answer_id: str | None = None,
        hints: Sequence[str] = (),
        solution_key: str | None = None,
        starter: Any = _NOTHING,
        course: str | None = None,
        assignment: str | None = None,
    ) -> None:
        if not isinstance(id, str) or not id.strip():
            raise ValueError("id must be a non-empty string")
        if not callable(check):
            raise TypeError("check must be callable")
        if (var is None) == (answer_id is None):
            raise ValueError("give exactly one of var= (a notebook variable) or answer_id= (a widget answer)")
        self.id = id
        self.var = var
        self.answer_id = answer_id
        self._check = check
        self.hints = [str(h) for h in hints]
        self.solution_key = solution_key or id
        self.starter = starter
        self.course = course
        self.assignment = assignment
        self.last_kind: str | None = None
        self.last_message: str | None = None

    def __repr__(self) -> str:
        return f"<문제 {self.id}: .check()로 확인, .hint()로 힌트, .solution()으로 정답 보기>"

    def _say(self, kind: str, text: str, code: str | None = None) -> None:
        self.last_kind = kind
        self.last_message = text
        _show(Feedback(kind, text, code))

    # -- reading the learner's answer ----------------------------------------------------------
    def _lookup(self, namespace: Mapping[str, Any] | None, caller_globals: Mapping[str, Any]) -> Any:
        if self.answer_id is not None:
            return answers.load_answer(self.answer_id, default=_NOTHING)
        assert self.var is not None
        for space in (namespace, caller_globals, _ipython_namespace()):
            if space is not None and self.var in space:
                return space[self.var]
        return _NOTHING

    def _unanswered(self, value: Any) -> bool:
        if value is _NOTHING or _is_blank(value):
            return True
        if self.starter is _NOTHING:
            return False
        try:
            return bool(value == self.starter)
        except Exception:
            return False

    # -- public API ----------------------------------------------------------------------------
    def check(self, namespace: Mapping[str, Any] | None = None) -> bool:
        """Check the learner's answer, show the result and return whether it is correct."""
        try:
            caller_globals = sys._getframe(1).f_globals
        except (AttributeError, ValueError):
            caller_globals = {}
        try:
            value = self._lookup(namespace, caller_globals)
        except Exception:
            log.exception("reading the answer of %s failed", self.id)
            self._say("error", MSG_CHECK_FAILED)
            return False
        if self._unanswered(value):
            if self.answer_id is not None:
                self._say("empty", MSG_NO_WIDGET_ANSWER)
            elif value is _NOTHING:
                self._say("empty", MSG_MISSING_VAR.format(var=self.var))
            else:
                self._say("empty", MSG_EMPTY)
            return False
        try:
            result = self._check(value)
        except AssertionError as e:
            result = (False, str(e))
        except Exception:
            log.exception("check of %s raised", self.id)
            self._say("error", MSG_CHECK_FAILED)
            return False
        if isinstance(result, tuple) and len(result) == 2:
            ok, detail = bool(result[0]), ("" if result[1] is None else str(result[1]).strip())
        else:
            ok, detail = bool(result), ""
        if ok:
            self._say("correct", f"{MSG_CORRECT} {detail}".strip())
        else:
            self._say("incorrect", MSG_NOT_YET.format(detail=detail or MSG_NOT_YET_DEFAULT))
        return ok

    def hint(self, n: int = 1) -> str | None:
        """Show hint *n* (1 = the gentlest) and return its text."""
        if not self.hints:
            self._say("hint", MSG_NO_HINTS)
            return None
        try:
            n = int(n)
        except (TypeError, ValueError):
            n = 1
        n = min(max(n, 1), len(self.hints))
        text = MSG_HINT.format(n=n, text=self.hints[n - 1])
        if n == len(self.hints) and len(self.hints) > 1:
            text += f"\n({MSG_HINT_LAST.format(count=len(self.hints))})"
        elif n < len(self.hints):
            text += f"\n(더 필요하면 다음 힌트도 볼 수 있어요: .hint({n + 1}))"
        self._say("hint", text)
        return self.hints[n - 1]

    def solution(self) -> str | None:
        """Show the trainer's released solution; before release, say when it will come."""
        try:
            found = load_solution(self.solution_key, self.course, self.assignment)
        except Exception:
            log.exception("looking up the solution of %s failed", self.id)
            found = None
        if found is None:
            self._say("solution", MSG_SOLUTION_LATER)
            return None
        self._say("solution", found["text"] or "정답 코드예요.", found["code"] or None)
        return "\n".join(part for part in (found["text"], found["code"]) if part)


def _ipython_namespace() -> Mapping[str, Any] | None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the lab
        return None
    shell = get_ipython()
    return getattr(shell, "user_ns", None) if shell is not None else None
