"""Item analysis: answering without the skill fails a module, the model answer gets full marks.

Each module in :data:`MODULES` is graded with the real nbgrader (``graders/nbgrader_config.py``, two-phase
autograde) on one submission per strategy.  Every strategy answers by driving the notebook's real
widgets, the way a learner clicks:

* the model answer (the answer key, solution cells filled) must score 100 % of the autograded points;
* each "no-skill" strategy — always the longest option, always the first or the second option shown,
  ticking every box, copying the example the notebook itself shows, 20 characters in every text box,
  the rubric's own cue words strung together in a prompt — must score under :data:`NO_SKILL_LIMIT`.
  Prompts are run twice in the playground before they are saved, as the rubric asks.

A module joins by being listed in :data:`MODULES`; a widget type no strategy knows fails loudly.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nbgrader.api import Gradebook

from donghaeng.toolkit.answers import ANSWERS_FILE
from donghaeng.toolkit.widgets.choice import ChoiceQuestion
from donghaeng.grading import load_rubric
from donghaeng.toolkit.widgets.playground import PromptPlayground
from donghaeng.toolkit.widgets.quiz import CheckboxQuestion, DropdownsQuestion, NumberQuestion
from donghaeng.toolkit.widgets.responsible import HallucinationCheck, TextEditExercise

from test_assignments import (
    NOTEBOOKS, Nb, answer_key, answer_like_a_learner, build_widget, code_text, fill_solutions, nbg_meta, nbgrader,
    read_nb, widget_cells, write_course_config,
)

MODULES = [("ai-basics", "m1-first-steps"), ("ai-basics", "m2-work-smarter"), ("ai-basics", "m3-prompting"),
           ("ai-basics", "m4-responsible-ai"), ("ai-basics", "m5-keep-growing"),
           ("ttt", "t1-class-design"), ("ttt", "t2-running-the-lab"), ("ttt", "t3-grading-calibration"),
           ("ttt", "t4-teach-back")]
NO_SKILL_LIMIT = 0.40
FILLER_TEXT = "가나다라마바사아자차카타파하가나다라마바사"  # any 20 characters


def module(course: str, assignment: str) -> Nb:
    return next(nb for nb in NOTEBOOKS if (nb.course, nb.assignment) == (course, assignment))


def visible_text(nb: Nb) -> str:
    """What a learner reads without unfolding anything: markdown and the code cells left open."""
    return "\n".join(c.source for c in read_nb(nb.path).cells
                     if c.cell_type == "markdown" or not c.metadata.get("jupyter", {}).get("source_hidden"))


def example_numbers(nb: Nb) -> list[int]:
    """Whole numbers the notebook's own open example cells print (what a copier would take).

    The open cells run in order in one namespace, as a learner runs them: a self-check's setup cell
    comes before the cell that checks.
    """
    printed = io.StringIO()
    namespace: dict = {}
    for cell in read_nb(nb.path).cells:
        folded = nbg_meta(cell).get("grade") or cell.metadata.get("jupyter", {}).get("source_hidden")
        if cell.cell_type == "code" and not folded:
            with contextlib.redirect_stdout(printed):
                exec(cell.source, namespace)  # noqa: S102 - the course's own example cell
    return [int(n) for n in re.findall(r"\d+", printed.getvalue())]


def overlap(option: str, text: str) -> int:
    return sum(1 for word in option.split() if len(word) > 1 and word in text)


def typed_prompt(widget: PromptPlayground, task: str, context: str, references: str) -> dict[str, Any]:
    """A playground answer: three texts typed, the settings as shown, run twice before saving."""
    return {"task": task, "context": context, "references": references, "temperature": widget.temperature.value,
            "top_p": widget.top_p.value, "max_tokens": widget.max_tokens.value, "runs": 2}


def keyword_salad(nb: Nb) -> str:
    """Every cue word and fact of the rubrics the notebook's check cells grade with, strung together."""
    names = re.findall(r"""grade_prompt\([^,]+,\s*["']([^"']+)["']""", code_text(nb))
    words = [word for name in names for criterion in load_rubric(name).criteria
             for word in [*criterion.cues, *(way for group in criterion.facts for way in group)]]
    return " ".join(dict.fromkeys(words))


def table_example(nb: Nb) -> dict[str, str]:
    """The example column of the notebook's first framework table (``| **작업** | … | example |``)."""
    rows: dict[str, str] = {}
    for m in re.finditer(r"^\| \*\*(.+?)\*\* \|.*\|(.+)\|$", visible_text(nb), re.M):
        rows.setdefault(m.group(1), m.group(2).strip())
    return {"task": rows.get("작업", ""), "context": rows.get("맥락", ""), "references": rows.get("참고 자료", "")}


# A strategy gets the widget and the notebook and returns what to enter (None: leave it unanswered).
Strategy = Callable[[Any, Nb], Any]


def pick(choose: Callable[[list[str]], str], number: Callable[[NumberQuestion], int],
         boxes: Callable[[list[str]], list[str]] | None = None) -> Strategy:
    """A strategy from its rule for options, for number boxes and (default: the option alone) check boxes."""
    def answer(widget: Any, nb: Nb) -> Any:
        if isinstance(widget, ChoiceQuestion):
            return choose(widget.options)
        if isinstance(widget, CheckboxQuestion):
            chosen = boxes(widget.shown) if boxes else [choose(widget.shown)]
            return [o for o in widget.options if o in chosen]
        if isinstance(widget, NumberQuestion):
            return number(widget)
        if isinstance(widget, DropdownsQuestion):  # the same rule in every list
            return {row: choose(list(dropdown.options)) for row, dropdown in widget.dropdowns.items()}
        if isinstance(widget, PromptPlayground):  # the rubric's own words, in every box
            salad = keyword_salad(nb)
            return typed_prompt(widget, salad, salad, salad)
        if isinstance(widget, TextEditExercise):
            return None  # the text left as shown: saving it unchanged is refused
        if isinstance(widget, HallucinationCheck):  # every sentence ticked, or none
            return {"sentences": widget.sentences, "supported": [boxes is not None] * len(widget.sentences)}
        raise AssertionError(f"no strategy for {type(widget).__name__}: add one before listing the module")
    return answer


def copy_example(widget: Any, nb: Nb) -> Any:
    """Take the example the notebook shows: its printed count, the option closest to its prose."""
    text = visible_text(nb)
    if isinstance(widget, NumberQuestion):
        return next(n for n in example_numbers(nb) if widget.number.min <= n <= widget.number.max)
    if isinstance(widget, PromptPlayground):
        return typed_prompt(widget, **table_example(nb))
    return pick(lambda options: max(options, key=lambda o: overlap(o, text)), int)(widget, nb)


def filler(widget: Any, nb: Nb) -> Any:
    """20 characters wherever text is asked; everything else left as it first appears."""
    if isinstance(widget, TextEditExercise):
        return FILLER_TEXT
    if isinstance(widget, PromptPlayground):
        return typed_prompt(widget, FILLER_TEXT, FILLER_TEXT, FILLER_TEXT)
    if isinstance(widget, DropdownsQuestion):
        return None  # nothing picked
    if isinstance(widget, NumberQuestion):
        return int(widget.number.value)
    return pick(lambda options: options[0], int)(widget, nb)


NO_SKILL: dict[str, Strategy] = {
    "longest": pick(lambda o: max(o, key=len), lambda w: int(w.number.max)),
    "first": pick(lambda o: o[0], lambda w: int(w.number.value)),
    "second": pick(lambda o: o[1], lambda w: int(w.number.value) + 1),
    "every_box": pick(lambda o: o[-1], lambda w: (int(w.number.min) + int(w.number.max)) // 2, boxes=list),
    "copy_example": copy_example,
    "filler": filler,
}


def answer_with(strategy: Strategy, nb: Nb, folder: Path) -> None:
    """Answer every graded widget of *nb* in *folder* as *strategy* says, by clicking."""
    with contextlib.chdir(folder):
        for source in widget_cells(nb):
            widget = build_widget(source, {})
            value = strategy(widget, nb)
            if value is not None:  # None: nothing entered, so nothing saved
                answer_like_a_learner(widget, value)


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> dict[tuple[str, str], dict[str, float]]:
    """Share of the autograded points each strategy earns, per module."""
    result = {}
    for course in sorted({c for c, _ in MODULES}):
        listed = [module(c, a) for c, a in MODULES if c == course]
        root = tmp_path_factory.mktemp(f"items-{course}")
        for nb in listed:
            shutil.copytree(nb.path.parent, root / "source" / nb.assignment)
        write_course_config(root, course)
        nbgrader(root, "generate_assignment", "*")
        for nb in listed:
            release = root / "release" / nb.assignment / f"{nb.name}.ipynb"
            model = root / "submitted" / "model" / nb.assignment
            fill_solutions(nb.path, release, model / release.name)
            shutil.copy(nb.answers_path, model / ANSWERS_FILE)
            for name, strategy in NO_SKILL.items():
                folder = root / "submitted" / name / nb.assignment
                folder.mkdir(parents=True)
                shutil.copy(release, folder / release.name)  # nothing typed
                answer_with(strategy, nb, folder)
        nbgrader(root, "autograde", "*")
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=course) as gb:
            for nb in listed:
                result[(course, nb.assignment)] = {
                    student: (s := gb.find_submission(nb.assignment, student)).code_score / s.max_code_score
                    for student in ["model", *NO_SKILL]
                }
    return result


@pytest.mark.slow
@pytest.mark.parametrize(("course", "assignment"), MODULES)
def test_the_model_answer_gets_every_point(scores, course: str, assignment: str):
    assert scores[(course, assignment)]["model"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("strategy", sorted(NO_SKILL))
@pytest.mark.parametrize(("course", "assignment"), MODULES)
def test_answering_without_the_skill_fails(scores, course: str, assignment: str, strategy: str):
    share = scores[(course, assignment)][strategy]
    assert share < NO_SKILL_LIMIT, f"{strategy}: {share:.0%} of the autograded points without the skill"


@pytest.mark.parametrize(("course", "assignment"), MODULES)
def test_no_number_answer_can_be_copied_from_the_page(course: str, assignment: str):
    """Copying any number the learner can read, not only the example's, never gives a number answer."""
    nb = module(course, assignment)
    shown = {int(n) for n in re.findall(r"\d+", visible_text(nb))} | set(example_numbers(nb))
    numbers = {qid: v for qid, v in answer_key(nb).items() if isinstance(v, int) and not isinstance(v, bool)}
    assert not {qid: v for qid, v in numbers.items() if v in shown}


@pytest.mark.parametrize(("course", "assignment"), MODULES)
def test_options_are_shuffled_and_the_right_one_is_not_the_longest(course: str, assignment: str, tmp_path):
    nb = module(course, assignment)
    key = answer_key(nb)
    with contextlib.chdir(tmp_path):
        questions = [w for w in (build_widget(s, {}) for s in widget_cells(nb)) if isinstance(w, ChoiceQuestion)]
    for question in questions:
        lengths = sorted(len(o) for o in question.options)
        assert lengths[-1] <= 1.3 * lengths[0], f"{question.question_id}: option lengths {lengths}"
        assert len(key[question.question_id]) < lengths[-1], f"{question.question_id}: the answer is the longest"
        with contextlib.chdir(tmp_path):
            again = build_widget(next(s for s in widget_cells(nb) if question.question_id in s), {})
        assert again.options == question.options, "the same learner sees the same order on every run"


def test_m1_token_count_is_what_the_tokenizer_shows(tmp_path, monkeypatch):
    """m1 Q2's key is the count the tokenizer explorer prints after "문제 문장 넣기" (not the words)."""
    from donghaeng.toolkit import model_client
    if not Path(model_client.DEFAULT_MODEL_PATH).exists():
        pytest.skip("the packaged model is not installed here")
    monkeypatch.delenv("DONGHAENG_MODEL_URL", raising=False)
    monkeypatch.delenv("DONGHAENG_MODEL_PATH", raising=False)
    nb = module("ai-basics", "m1-first-steps")
    cell = next(c.source for c in read_nb(nb.path).cells if nbg_meta(c).get("grade_id") == "m1-explore-tokens-widget")
    explorer = build_widget(cell, {})
    explorer._client = model_client.InKernelClient()  # the kernel path: the tokenizer only, no weights
    explorer.sample_button.click()
    expected = answer_key(nb)["m1-first-steps.q2"]
    assert f"토큰 {expected}개" in explorer.count.value
    assert expected != len(explorer.text.value.split()), "the answer is not the word count"


def test_m5_trainer_statements_are_what_the_trainer_shows(tmp_path):
    """m5 Q1's key is what training with the three learning rates the notebook names really shows."""
    from donghaeng.toolkit import tinylm
    from donghaeng.toolkit.widgets.trainer import TinyTrainer

    def train(learning_rate: float) -> TinyTrainer:
        trainer = TinyTrainer(background=False)
        trainer.learning_rate.value = learning_rate
        trainer.start()
        return trainer

    def losses(trainer: TinyTrainer) -> tuple[float, float]:
        first, last = re.search(r"손실이 ([\d.]+)에서 ([\d.]+)", trainer.message).groups()
        return float(first), float(last)

    default, huge, tiny = train(0.01), train(10.0), train(0.0003)
    first, last = losses(default)
    seen = {
        "처음 설정 그대로 학습하면 마지막 손실이 처음 손실의 절반보다 작아져요": last < first / 2,
        "학습률을 10으로 하면 학습이 불안정해졌다는 말이 나오고 멈춰요": tinylm.MSG_UNSTABLE in huge.message,
        "학습률을 0.0003으로 낮추면 처음 설정보다 손실이 더 많이 줄어요": losses(tiny)[1] < last,
        "학습 전에 만든 '처음' 글도 낱말처럼 자연스럽게 읽혀요": tinylm.known_pair_share(default.samples["처음"]) > 0.5,
        "손실이 클수록 모델이 다음 글자를 더 잘 맞힌다는 뜻이에요": False,  # the notebook's definition of loss
        "학습을 마친 '끝' 글은 '처음' 글보다 우리말 낱말에 가까워요":
            tinylm.known_pair_share(default.samples["끝"]) > tinylm.known_pair_share(default.samples["처음"]),
    }
    nb = module("ai-basics", "m5-keep-growing")
    with contextlib.chdir(tmp_path):
        question = build_widget(next(s for s in widget_cells(nb) if "m5-keep-growing.q1" in s), {})
    assert set(question.options) == set(seen), "the statements checked here are the ones the learner sees"
    assert answer_key(nb)["m5-keep-growing.q1"] == [s for s in question.options if seen[s]]
