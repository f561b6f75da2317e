"""Questions answered by clicking only: a number box and check boxes, and what a check cell shows.

With :func:`donghaeng.toolkit.widgets.choice.choice_question` these let a learner finish a notebook without
typing code.  Each saves its answer to ``donghaeng_answers.json`` like the choice question; the
notebook cell that builds one is kept folded (``jupyter.source_hidden``), so a learner sees only
the question.  A check cell calls :func:`show_saved`, which prints one Korean line and never
raises: the hidden test after it is what scores the answer.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from donghaeng.toolkit.widgets.choice import SavedAnswerQuestion, check_options, seeded_order
from donghaeng.toolkit.widgets.common import number_field
from donghaeng.toolkit.widgets.playground import PromptPlayground

from donghaeng.toolkit import answers
__all__ = [
    "CheckboxQuestion", "DropdownsQuestion", "NumberQuestion", "TriedPromptPlayground", "checkbox_question",
    "describe_picks", "describe_prompt", "dropdowns_question", "graded_playground", "number_question", "show_saved",
]

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


def show_saved(question_id: str, describe: Callable[[Any], str] | None = None) -> None:
    """What a check cell prints: the saved answer, or one Korean line asking to save one.

    *describe* turns a saved value that is neither text nor a list (a source check's marks) into one line.
    """
    saved = answers.load_answer(question_id)
    if saved is None:
        print(MSG_NOT_SAVED)
        return
    if describe is not None:
        shown = describe(saved)
    else:
        shown = " / ".join(map(str, saved)) if isinstance(saved, list) else saved
    print(MSG_SAVED_CHECK.format(answer=shown))
    print(MSG_AFTER_SUBMIT)


MSG_PICK_EVERY = "아직 고르지 않은 칸이 있어요: {rows}. 칸마다 하나씩 골라 주세요."
BLANK = "…"


class DropdownsQuestion(SavedAnswerQuestion):
    """One drop-down list per row (see :func:`dropdowns_question`); saved as ``{row: picked option}``."""

    label = "골라 채우기 문제"

    def __init__(self, question_id: str, prompt: str, rows: Mapping[str, Sequence[str]], *,
                 shuffle_rows: bool = False, shuffle_options: bool = True, template: str = "",
                 hints: Sequence[str] = ()) -> None:
        if len(rows) < 2:
            raise ValueError("a drop-down question needs at least two rows")
        self.rows = {str(row): check_options(options) for row, options in rows.items()}  # the author's order
        self.template = template
        for row in self.rows:
            if template and "{" + row + "}" not in template:
                raise ValueError(f"the template has no {{{row}}} blank")
        shown_rows = seeded_order(question_id, list(self.rows)) if shuffle_rows else list(self.rows)
        self.dropdowns: dict[str, widgets.Dropdown] = {}
        lines = []
        for row in shown_rows:
            options = seeded_order(f"{question_id}/{row}", self.rows[row]) if shuffle_options else self.rows[row]
            dropdown = widgets.Dropdown(options=options, value=None, description="", tooltip=row,
                                        layout=widgets.Layout(width="auto", max_width="100%"))
            self.dropdowns[row] = dropdown
            lines.append(widgets.VBox(children=[widgets.HTML(f"<span>{html.escape(row)}</span>"), dropdown],
                                      layout=widgets.Layout(margin="0.2em 0 0.4em 0")))
        self.preview = widgets.HTML(value="")
        if template:
            for dropdown in self.dropdowns.values():
                dropdown.observe(lambda _change: self._update_preview(), names="value")
            self._update_preview()
            lines.append(self.preview)
        self.field = widgets.VBox(children=lines)
        super().__init__(question_id, prompt, hints)

    @property
    def shown_rows(self) -> list[str]:
        """The rows in the order the learner sees them."""
        return list(self.dropdowns)

    def picked(self) -> dict[str, str | None]:
        return {row: self.dropdowns[row].value for row in self.rows}

    def current(self) -> dict[str, str] | None:
        picked = self.picked()
        if any(value is None for value in picked.values()):
            return None
        return {row: str(value) for row, value in picked.items()}

    def restore(self, saved: Any) -> bool:
        if not isinstance(saved, dict) or set(saved) != set(self.rows):
            return False
        if any(saved[row] not in options for row, options in self.rows.items()):
            return False
        for row, dropdown in self.dropdowns.items():
            dropdown.value = saved[row]
        return True

    def describe(self, answer: Any) -> str:
        return describe_picks(answer)

    def filled_text(self) -> str:
        """The template with every blank filled by what is picked now (``…`` where nothing is)."""
        text = self.template
        for row, value in self.picked().items():
            text = text.replace("{" + row + "}", value if value is not None else BLANK)
        return text

    def _update_preview(self) -> None:
        self.preview.value = ('<div style="white-space:pre-wrap; border:1px solid #d0d7de; border-radius:4px; '
                              f'padding:0.5em; background:#f6f8fa">{html.escape(self.filled_text())}</div>')

    def save(self) -> bool:
        empty = [row for row in self.shown_rows if self.dropdowns[row].value is None]
        if empty and len(empty) < len(self.rows):
            self._show(MSG_PICK_EVERY.format(rows=", ".join(_short(row) for row in empty)), "warn")
            return False
        return super().save()


def _short(text: str, limit: int = 12) -> str:
    return f"'{text}'" if len(text) <= limit else f"'{text[:limit]}…'"


def dropdowns_question(question_id: str, prompt: str, rows: Mapping[str, Sequence[str]], *,
                       shuffle_rows: bool = False, shuffle_options: bool = True, template: str = "",
                       hints: Sequence[str] = ()) -> widgets.Widget:
    """A drop-down list for each of *rows* (label → options), answered when every row is picked.

    Matching ("which step is each sentence?") and fill-in-the-blanks both fit: with *template*, a
    text whose ``{row}`` blanks are filled as the learner picks is shown under the lists.  The rows
    (with *shuffle_rows*) and each row's options (with *shuffle_options*) are shown in an order seeded
    by *question_id*; the saved answer maps each row to the picked option's text.
    """
    return DropdownsQuestion(question_id, prompt, rows, shuffle_rows=shuffle_rows,
                             shuffle_options=shuffle_options, template=template, hints=hints)


def describe_picks(answer: Any) -> str:
    """One line for a saved ``{row: option}`` answer (what ``show_saved(..., describe_picks)`` prints)."""
    if not isinstance(answer, dict):
        return str(answer)
    return " / ".join(f"{_short(str(row), 16)} → {value}" for row, value in answer.items())


class TriedPromptPlayground(PromptPlayground):
    """The prompt playground of a graded prompt: the saved answer also counts the runs made before it.

    A rubric can then ask for evaluation and iteration (``check = "runs"``).  The count adds the
    runs of this kernel to the ones in the answer saved earlier, so restarting the kernel loses none.
    """

    def __init__(self, client: Any = None, question_id: str | None = None) -> None:
        saved = answers.load_answer(question_id) if question_id else None
        runs = saved.get("runs") if isinstance(saved, dict) else None
        self.earlier_runs = runs if isinstance(runs, int) and not isinstance(runs, bool) and runs > 0 else 0
        super().__init__(client=client, question_id=question_id)

    @property
    def runs(self) -> int:
        """Runs that got an answer from the model (a run stopped by an error does not count)."""
        return self.earlier_runs + sum(1 for attempt in self.history if not attempt.message)

    def _saved_value(self) -> dict[str, Any]:
        return {**super()._saved_value(), "runs": self.runs}


def graded_playground(question_id: str, client: Any = None) -> widgets.Widget:
    """The prompt playground whose saved prompt a rubric grades, with its number of runs."""
    return TriedPromptPlayground(client=client, question_id=question_id)


def describe_prompt(answer: Any) -> str:
    """One readable block for a saved playground answer (what the check cell of a prompt prints)."""
    if not isinstance(answer, dict):
        return str(answer)
    runs = answer.get("runs")
    tried = f"\n(실행한 횟수: {runs}번)" if isinstance(runs, int) else ""
    return "\n" + str(answer.get("prompt") or "") + tried
