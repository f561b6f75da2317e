"""Small ipywidgets exercises whose answers survive into nbgrader autograde.

A learner picks an option and presses "저장하기"; the choice goes to ``donghaeng_answers.json``
through :func:`donghaeng.answers.save_answer`.  An autograded test cell then checks it with
:func:`donghaeng.answers.load_answer`.  Re-running the cell shows the saved choice again.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

import ipywidgets as widgets

from .common import LearnerWidget

from .. import answers

__all__ = ["ChoiceQuestion", "choice_question"]

log = logging.getLogger(__name__)

MSG_PICK_FIRST = "먼저 답을 하나 골라 주세요."
MSG_SAVED = "저장했어요: {answer}"
MSG_ALREADY_SAVED = "저장된 답: {answer} (바꾸려면 다른 답을 고르고 다시 '저장하기'를 눌러 주세요.)"
MSG_SAVE_FAILED = (
    "앗, 답을 저장하지 못했어요. 잠시 뒤 '저장하기'를 한 번 더 눌러 주세요. "
    "계속 안 되면 강사님께 이 화면을 보여 주세요."
)




class ChoiceQuestion(LearnerWidget):
    """A prompt, radio buttons, a save button and a status line (see :func:`choice_question`)."""

    label = "선택 문제"

    def __init__(self, question_id: str, prompt: str, options: Sequence[str]) -> None:
        if not isinstance(question_id, str) or not question_id.strip():
            raise ValueError("question_id must be a non-empty string")
        options = [str(o) for o in options]
        if len(options) < 2:
            raise ValueError("a choice question needs at least two options")
        if len(set(options)) != len(options):
            raise ValueError("options must be distinct")

        self.question_id = question_id
        self.options = options

        self.prompt = widgets.HTML(value=f"<p><b>{html.escape(prompt)}</b></p>")
        saved = answers.load_answer(question_id)
        self.choices = widgets.RadioButtons(
            options=options,
            index=options.index(saved) if saved in options else None,  # nothing preselected by default
            description="답 고르기",
            tooltip=prompt,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="auto"),
        )
        self.save_button = widgets.Button(
            description="저장하기",
            tooltip="고른 답을 저장해요",
            icon="save",
            button_style="primary",
        )
        self.status = widgets.HTML(value="")
        if saved in options:
            self._show(MSG_ALREADY_SAVED.format(answer=saved), "info")
        self.save_button.on_click(lambda _button: self.save())
        super().__init__(
            children=[self.prompt, self.choices, self.save_button, self.status],
            layout=widgets.Layout(border="1px solid #d0d7de", padding="0.6em", margin="0.5em 0"),
        )

    def save(self) -> bool:
        """Save the current choice; show a Korean message instead of ever raising."""
        choice = self.choices.value
        if choice is None:
            self._show(MSG_PICK_FIRST, "warn")
            return False
        try:
            answers.save_answer(self.question_id, choice)
        except Exception:  # a button callback must never show a learner a traceback
            log.exception("saving answer %r failed", self.question_id)
            self._show(MSG_SAVE_FAILED, "error")
            return False
        self._show(MSG_SAVED.format(answer=choice), "ok")
        return True

    def plain_text(self) -> str:
        saved = answers.load_answer(self.question_id)
        shown = saved if saved is not None else "(아직 저장한 답이 없어요)"
        return f"[{self.label}] 저장된 답: {shown}"


def choice_question(question_id: str, prompt: str, options: list[str]) -> widgets.Widget:
    """A keyboard-usable multiple-choice exercise whose answer is saved for autograde.

    *question_id* names the answer in ``donghaeng_answers.json`` (unique per assignment folder),
    *prompt* is the Korean question and *options* the choices shown as radio buttons.
    """
    return ChoiceQuestion(question_id, prompt, options)
