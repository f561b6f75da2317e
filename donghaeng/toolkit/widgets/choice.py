"""Small ipywidgets exercises whose answers survive into nbgrader autograde.

A learner picks an option and presses "저장하기"; the choice goes to ``donghaeng_answers.json``
through :func:`donghaeng.toolkit.answers.save_answer`.  An autograded test cell then checks it with
:func:`donghaeng.toolkit.answers.load_answer`.  Re-running the cell shows the saved choice again.

:class:`SavedAnswerQuestion` is what every such question shares (prompt, save button, status line,
optional hint button); :mod:`donghaeng.toolkit.widgets.quiz` adds number and check-box questions.
"""

from __future__ import annotations

import html
import logging
import random
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from donghaeng.toolkit.widgets.common import LearnerWidget

from donghaeng.toolkit import answers
__all__ = ["ChoiceQuestion", "HintButton", "SavedAnswerQuestion", "choice_question", "seeded_order"]

log = logging.getLogger(__name__)

MSG_PICK_FIRST = "먼저 답을 하나 골라 주세요."
MSG_SAVED = "저장했어요: {answer}"
MSG_ALREADY_SAVED = "저장된 답: {answer} (바꾸려면 다른 답을 고르고 다시 '저장하기'를 눌러 주세요.)"
MSG_SAVE_FAILED = (
    "앗, 답을 저장하지 못했어요. 잠시 뒤 '저장하기'를 한 번 더 눌러 주세요. "
    "계속 안 되면 강사님께 이 화면을 보여 주세요."
)
HINT_LABEL = "힌트 보기"
HINT_MORE = "힌트 하나 더 보기"


def seeded_order(question_id: str, options: Sequence[str]) -> list[str]:
    """*options* shuffled with *question_id* as the seed: the same order on every run and machine.

    The saved answer is the option's text, so the answer key does not depend on the order.
    """
    shuffled = list(options)
    random.Random(question_id).shuffle(shuffled)
    return shuffled


def check_options(options: Sequence[Any], least: int = 2) -> list[str]:
    """The options as strings; at least *least* of them, all distinct."""
    texts = [str(o) for o in options]
    if len(texts) < least:
        raise ValueError(f"a question needs at least {least} options")
    if len(set(texts)) != len(texts):
        raise ValueError("options must be distinct")
    return texts


class HintButton(widgets.VBox):
    """A button that shows one more hint each time it is pressed."""

    def __init__(self, hints: Sequence[str]) -> None:
        if not hints:
            raise ValueError("a hint button needs at least one hint")
        self.hints = [str(h) for h in hints]
        self.shown = 0
        self.button = widgets.Button(description=HINT_LABEL, tooltip="힌트를 하나씩 보여 줘요", icon="lightbulb-o")
        self.text = widgets.HTML(value="")
        self.button.on_click(lambda _button: self.reveal())
        super().__init__(children=[self.button, self.text])

    def reveal(self) -> None:
        if self.shown < len(self.hints):
            self.shown += 1
        self.text.value = "".join(f"<p>💡 {html.escape(h)}</p>" for h in self.hints[: self.shown])
        self.button.description = HINT_MORE
        self.button.disabled = self.shown == len(self.hints)


class SavedAnswerQuestion(LearnerWidget):
    """A prompt, an answer field, a save button, a status line and optional hints.

    Subclasses build ``self.field`` (shown under the prompt) and implement :meth:`current`
    (the answer now in the field, ``None`` when nothing is picked) and :meth:`describe`.
    """

    label = "문제"
    field: widgets.Widget

    def __init__(self, question_id: str, prompt: str, hints: Sequence[str] = ()) -> None:
        if not isinstance(question_id, str) or not question_id.strip():
            raise ValueError("question_id must be a non-empty string")
        self.question_id = question_id
        self.prompt = widgets.HTML(value=f"<p><b>{html.escape(prompt)}</b></p>")
        self.save_button = widgets.Button(
            description="저장하기",
            tooltip="고른 답을 저장해요",
            icon="save",
            button_style="primary",
        )
        self.status = widgets.HTML(value="")
        saved = answers.load_answer(question_id)
        if saved is not None and self.restore(saved):
            self._show(MSG_ALREADY_SAVED.format(answer=self.describe(saved)), "info")
        self.save_button.on_click(lambda _button: self.save())
        children = [self.prompt, self.field, self.save_button, self.status]
        if hints:
            children.append(HintButton(hints))
        super().__init__(
            children=children,
            layout=widgets.Layout(border="1px solid #d0d7de", padding="0.6em", margin="0.5em 0"),
        )

    def current(self) -> Any:
        raise NotImplementedError

    def restore(self, saved: Any) -> bool:
        """Show a saved answer in the field; ``False`` if it does not fit this question."""
        raise NotImplementedError

    def describe(self, answer: Any) -> str:
        return str(answer)

    def save(self) -> bool:
        """Save the current answer; show a Korean message instead of ever raising."""
        answer = self.current()
        if answer is None:
            self._show(MSG_PICK_FIRST, "warn")
            return False
        try:
            answers.save_answer(self.question_id, answer)
        except Exception:  # a button callback must never show a learner a traceback
            log.exception("saving answer %r failed", self.question_id)
            self._show(MSG_SAVE_FAILED, "error")
            return False
        self._show(MSG_SAVED.format(answer=self.describe(answer)), "ok")
        return True

    def plain_text(self) -> str:
        saved = answers.load_answer(self.question_id)
        shown = self.describe(saved) if saved is not None else "(아직 저장한 답이 없어요)"
        return f"[{self.label}] 저장된 답: {shown}"


class ChoiceQuestion(SavedAnswerQuestion):
    """Radio buttons (see :func:`choice_question`); ``options`` is the order shown."""

    label = "선택 문제"

    def __init__(self, question_id: str, prompt: str, options: Sequence[str], *, shuffle: bool = False,
                 hints: Sequence[str] = ()) -> None:
        options = check_options(options)
        self.options = seeded_order(question_id, options) if shuffle else options
        self.choices = widgets.RadioButtons(
            options=self.options,
            index=None,  # nothing preselected by default
            description="답 고르기",
            tooltip=prompt,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="auto"),
        )
        self.field = self.choices
        super().__init__(question_id, prompt, hints)

    def current(self) -> str | None:
        return self.choices.value

    def restore(self, saved: Any) -> bool:
        if saved not in self.options:
            return False
        self.choices.value = saved
        return True


def choice_question(question_id: str, prompt: str, options: list[str], *, shuffle: bool = False,
                    hints: Sequence[str] = ()) -> widgets.Widget:
    """A keyboard-usable multiple-choice exercise whose answer is saved for autograde.

    *question_id* names the answer in ``donghaeng_answers.json`` (unique per assignment folder),
    *prompt* is the Korean question and *options* the choices shown as radio buttons, in a stable
    order shuffled by *question_id* when *shuffle* is set.  *hints* appear one by one under a button.
    """
    return ChoiceQuestion(question_id, prompt, options, shuffle=shuffle, hints=hints)
