"""Grade the answers widgets saved (``donghaeng_answers.json``) against a key, with partial credit.

For a hidden test cell::

    from donghaeng.grading import grade_answers
    grade_answers({"m4.q1": "B", "m4.hallucination": {"supported": [True, False, True]}}).explain(points=3)

Each question is worth the same share of the cell's points.  The key's value says how to grade:

* a plain value (a choice): the saved answer must be equal;
* a list: the share of positions that match (a list of check marks, an order);
* a dict: the share of the key's entries whose saved value matches (checked recursively, so a
  nested list is partial credit too); keys the key does not name are ignored;
* a :class:`~donghaeng.grading.rubric.Rubric`: the saved text (or playground answer) graded by it;
* a callable: receives the saved value and returns ``(fraction, message)``, ``(bool, message)`` or a
  bool; use this for model outputs, checking properties (length, Korean, a required fact), never
  the exact text of a sampled output.

A question with no saved answer scores zero with the widget's Korean "not saved yet" message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from donghaeng.toolkit.answers import load_all
from donghaeng.toolkit.exercises import MSG_CHECK_FAILED, MSG_NO_WIDGET_ANSWER
from donghaeng.grading.report import Line, Report
from donghaeng.grading.rubric import Rubric, grade_prompt

__all__ = ["grade_answers", "match_fraction"]

MSG_RIGHT = "맞았어요."
MSG_PARTLY = "일부 맞았어요({right}/{total})."
MSG_WRONG = "다시 살펴봐 주세요."


def match_fraction(expected: Any, saved: Any) -> tuple[float, int, int]:
    """``(fraction, right, total)``: how much of *saved* matches *expected* (see the module doc)."""
    if isinstance(expected, Mapping) and expected:
        if not isinstance(saved, Mapping):
            return 0.0, 0, len(expected)
        parts = [match_fraction(value, saved.get(key)) for key, value in expected.items()]
        return sum(p[0] for p in parts) / len(parts), sum(1 for p in parts if p[0] == 1), len(parts)
    if isinstance(expected, list) and expected:
        if not isinstance(saved, list):
            return 0.0, 0, len(expected)
        right = sum(1 for i, value in enumerate(expected) if i < len(saved) and saved[i] == value)
        right -= max(len(saved) - len(expected), 0)  # extra entries cost as much as wrong ones
        right = max(right, 0)
        return right / len(expected), right, len(expected)
    return float(saved == expected), int(saved == expected), 1


def _grade_one(expected: Any, saved: Any) -> tuple[float, str]:
    if isinstance(expected, Rubric):
        report = grade_prompt(saved, expected)
        lines = [f"{line.name} {'✔' if line.passed else '✘'}" for line in report.lines]
        return report.score / report.max_points, " · ".join(lines)
    if callable(expected):
        try:
            result = expected(saved)
        except AssertionError as e:
            return 0.0, str(e) or MSG_WRONG
        except Exception:  # noqa: BLE001 - a check that breaks on an odd answer gives zero, never crashes the cell
            return 0.0, MSG_CHECK_FAILED
        value, message = result if isinstance(result, tuple) else (result, "")
        fraction = min(max(float(value), 0.0), 1.0)
        return fraction, str(message or (MSG_RIGHT if fraction == 1 else MSG_WRONG))
    fraction, right, total = match_fraction(expected, saved)
    if fraction == 1:
        return 1.0, MSG_RIGHT
    return fraction, MSG_PARTLY.format(right=right, total=total) if fraction > 0 else MSG_WRONG


def grade_answers(key: Mapping[str, Any | Rubric | Callable[[Any], Any]], *,
                  directory: str | os.PathLike[str] | None = None,
                  title: str = "저장한 답 채점") -> Report:
    """Grade the saved answers in *directory* (default: the notebook's folder) against *key*."""
    saved_all = load_all(directory)
    report = Report(title)
    for question_id, expected in key.items():
        if question_id not in saved_all or saved_all[question_id] in (None, ""):
            report.lines.append(Line(question_id, 0.0, 1.0, MSG_NO_WIDGET_ANSWER))
            continue
        fraction, message = _grade_one(expected, saved_all[question_id])
        report.lines.append(Line(question_id, round(fraction, 4), 1.0, message))
    return report
