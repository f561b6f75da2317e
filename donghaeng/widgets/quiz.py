"""Questions answered by clicking only: a number box and check boxes, and what a check cell shows.

With :func:`donghaeng.widgets.choice.choice_question` these let a learner finish a notebook without
typing code.  Each saves its answer to ``donghaeng_answers.json`` like the choice question; the
notebook cell that builds one is kept folded (``jupyter.source_hidden``), so a learner sees only
the question.  A check cell calls :func:`show_saved`, which prints one Korean line and never
raises: the hidden test after it is what scores the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from .choice import SavedAnswerQuestion, check_options, seeded_order
from .common import number_field

from .. import answers

__all__ = ["CheckboxQuestion", "NumberQuestion", "checkbox_question", "number_question", "show_saved"]

MSG_NOT_SAVED = "아직 저장한 답이 없어요. 위에서 답을 고르고 '저장하기'를 눌러 주세요."
MSG_SAVED_CHECK = "저장된 답: {answer}"
MSG_AFTER_SUBMIT = "맞았는지는 제출한 뒤 피드백에서 알려 드려요."
NOTHING_CHECKED = "(고른 것 없음)"


class NumberQuestion(SavedAnswerQuestion):
    """A whole number in a box with arrow keys (see :func:`number_question`)."""

    label = "숫자 문제"

    def __init__(self, question_id: str, prompt: str, low: int, high: int, *, unit: str = "",
                 hints: Sequence[str] = ()) -> None:
        if not low < high:
            raise ValueError("low must be smaller than high")
        self.unit = unit
        self.number = number_field("내 답", low, low, high, 1, "위아래 화살표로 숫자를 바꿀 수 있어요")
        self.field = widgets.HBox(children=[self.number, widgets.Label(unit)]) if unit else self.number
        super().__init__(question_id, prompt, hints)

    def current(self) -> int:
        return int(self.number.value)

    def restore(self, saved: Any) -> bool:
        if not isinstance(saved, int) or isinstance(saved, bool) or not self.number.min <= saved <= self.number.max:
            return False
        self.number.value = saved
        return True

    def describe(self, answer: Any) -> str:
        return f"{answer}{self.unit}"


class CheckboxQuestion(SavedAnswerQuestion):
    """Check boxes in an order shuffled by the question id (see :func:`checkbox_question`)."""

    label = "모두 고르기 문제"

    def __init__(self, question_id: str, prompt: str, options: Sequence[str], *, hints: Sequence[str] = ()) -> None:
        self.options = check_options(options, least=3)  # the author's order: what is saved
        self.shown = seeded_order(question_id, self.options)
        self.boxes = [widgets.Checkbox(value=False, description=text, indent=False,
                                       layout=widgets.Layout(width="auto")) for text in self.shown]
        self.field = widgets.VBox(children=self.boxes)
        super().__init__(question_id, prompt, hints)

    def current(self) -> list[str] | None:
        ticked = {box.description for box in self.boxes if box.value}
        return [text for text in self.options if text in ticked] or None

    def restore(self, saved: Any) -> bool:
        if not isinstance(saved, list) or not set(saved) <= set(self.options):
            return False
        for box in self.boxes:
            box.value = box.description in saved
        return True

    def describe(self, answer: Any) -> str:
        return " / ".join(answer) if answer else NOTHING_CHECKED


def number_question(question_id: str, prompt: str, low: int, high: int, *, unit: str = "",
                    hints: Sequence[str] = ()) -> widgets.Widget:
    """A whole number between *low* and *high* (the box starts at *low*), saved as an ``int``."""
    return NumberQuestion(question_id, prompt, low, high, unit=unit, hints=hints)


def checkbox_question(question_id: str, prompt: str, options: Sequence[str], *,
                      hints: Sequence[str] = ()) -> widgets.Widget:
    """"Pick all that apply": saved as the ticked options, in the order *options* gives them."""
    return CheckboxQuestion(question_id, prompt, options, hints=hints)


def show_saved(question_id: str) -> None:
    """What a check cell prints: the saved answer, or one Korean line asking to save one."""
    saved = answers.load_answer(question_id)
    if saved is None:
        print(MSG_NOT_SAVED)
        return
    shown = " / ".join(map(str, saved)) if isinstance(saved, list) else saved
    print(MSG_SAVED_CHECK.format(answer=shown))
    print(MSG_AFTER_SUBMIT)
