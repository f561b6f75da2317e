"""The course notebooks go through the real nbgrader pipeline, and widget answers reach autograde.

Every source notebook under ``assignments/<course>/source/<assignment>/`` is found automatically.
Next to the sources live the trainers' files, which are never released:

* ``assignments/<course>/answer-keys/<assignment>.md`` — the Korean answer key and rubrics;
* ``assignments/<course>/answer-keys/<assignment>.answers.json`` — a correct ``donghaeng_answers.json``
  (what the widgets save when a learner answers everything right);
* ``assignments/<course>/solutions/<assignment>.json`` — the texts ``Question.solution()`` shows
  once a trainer runs ``donghaeng course release-solutions``.

For each course one throw-away nbgrader course directory is built (its ``nbgrader_config.py`` loads
the shared ``graders/nbgrader_config.py``), and the real ``nbgrader`` CLI runs ``generate_assignment``,
``autograde`` and ``generate_feedback`` once for all of the course's assignments, on hand-made
submissions:

* ``good``: every solution cell filled from the source notebook, the answer key's answers file;
* ``empty``: the release copy as is;
* ``widget-wrong``: solutions filled and the answer key's answers, except that every choice question
  is answered by clicking a wrong option in the real widget, so only those test cells should differ.

The two courses run side by side (the suite runs on two cores).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from traitlets.config.loader import PyFileConfigLoader

from donghaeng.toolkit import answers, exercises
from donghaeng.grading.courses import autograde_config
from donghaeng.grading.twophase import SandboxedTwoPhaseExecute, is_test_cell
from donghaeng.grading.sandbox import SandboxKernelManager
from donghaeng.common.settings import Autograde
from donghaeng.toolkit.answers import ANSWERS_FILE, AnswersFileError, load_all, load_answer, save_answer
from donghaeng.toolkit.widgets.choice import ChoiceQuestion, choice_question

REPO = Path(__file__).resolve().parent.parent
GRADERS_CONFIG = REPO / "graders" / "nbgrader_config.py"
# These tests grade the curriculum, not the sandbox, and run nbgrader as root in a throw-away course:
# the container sandbox runs kernels as the grader's uid (tests/test_container_sandbox.py covers it).
PROCESS_SANDBOX = Autograde(sandbox="process")
SOURCE_NOTEBOOKS = sorted(REPO.glob("assignments/*/source/*/*.ipynb"))

# The curriculum (docs/curriculum.md): Google AI Essentials' five modules, and the trainers' track.
CURRICULUM = {
    "ai-basics": ["m1-first-steps", "m2-work-smarter", "m3-prompting", "m4-responsible-ai", "m5-keep-growing"],
    "ttt": ["t1-class-design", "t2-running-the-lab", "t3-grading-calibration", "t4-teach-back"],
}

QUESTION_ID = re.compile(r"""choice_question\(\s*["']([^"']+)["']""")
LOADED_ID = re.compile(r"""load_answer\(\s*["']([^"']+)["']""")
SELF_CHECK_ID = re.compile(r"""\bQuestion\(\s*["']([^"']+)["']""")
ENGLISH_FEEDBACK = ["Score:", "Student's answer", "Student's task", "Test cell", "Comments:", "Grade cell:", "(Top)"]
KOREAN_STUBS = ["# 여기에 답을 써 주세요", "raise NotImplementedError()"]
# Calls that would load the language model or train the tiny model while a notebook merely runs.
# Widgets do this only when a learner presses a button; autograde runs every cell without one.
MODEL_CALLS = re.compile(
    r"get_client\(|\.complete\(|\.next_tokens\(|\.tokenize\(|\bTrainer\(|\.train\(|\.start\(|\.run\(|\.show\(|"
    r"\.click\(|\.append_top\(|\.append_sample\(|\.update\(|InKernelClient|ServiceClient|tinylm"
)


@dataclass(frozen=True)
class Nb:
    course: str
    assignment: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def keys_dir(self) -> Path:
        return REPO / "assignments" / self.course / "answer-keys"

    @property
    def answers_path(self) -> Path:
        return self.keys_dir / f"{self.assignment}.answers.json"

    @property
    def solutions_path(self) -> Path:
        return REPO / "assignments" / self.course / "solutions" / f"{self.assignment}.json"

    def __str__(self) -> str:
        return f"{self.course}/{self.assignment}/{self.name}"


@cache
def read_nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_text(nb: Nb) -> str:
    """All code cell sources of the notebook (not its JSON, where quotes are escaped)."""
    return "\n".join(c.source for c in read_nb(nb.path).cells if c.cell_type == "code")


def answer_key(nb: Nb) -> dict:
    """The content of a correct donghaeng_answers.json for this notebook."""
    return json.loads(nb.answers_path.read_text(encoding="utf-8"))


NOTEBOOKS = [Nb(p.parents[2].name, p.parent.name, p) for p in SOURCE_NOTEBOOKS]
WIDGET_NOTEBOOKS = [nb for nb in NOTEBOOKS if "choice_question(" in code_text(nb)]
COURSES = sorted({nb.course for nb in NOTEBOOKS})


def nbg_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def question_ids(nb: Nb) -> list[str]:
    """Ids of the choice questions."""
    return QUESTION_ID.findall(code_text(nb))


def graded_answer_ids(nb: Nb) -> set[str]:
    """Ids of every saved widget answer a test cell reads."""
    return set(LOADED_ID.findall(code_text(nb)))


def points(nb: Nb) -> tuple[int, int]:
    """(autograded, manually graded) points of the notebook."""
    auto = manual = 0
    for cell in read_nb(nb.path).cells:
        meta = nbg_meta(cell)
        if meta.get("grade"):
            if cell.cell_type == "code" and not meta.get("solution"):
                auto += meta["points"]
            else:
                manual += meta["points"]
    return auto, manual


def test_the_whole_curriculum_is_there():
    found = {course: sorted(nb.assignment for nb in NOTEBOOKS if nb.course == course) for course in COURSES}
    assert found == {course: sorted(names) for course, names in CURRICULUM.items()}
    assert set(WIDGET_NOTEBOOKS) == set(NOTEBOOKS), "every notebook has at least one choice widget"


# ------------------------------------------------------------------------------ static checks
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_source_notebook_is_valid(nb: Nb):
    notebook = read_nb(nb.path)
    nbformat.validate(notebook)
    assert nb.name == nb.assignment, "one notebook per assignment, named like its folder"
    assert notebook.metadata.kernelspec.name == "python3"
    assert sorted(p.name for p in nb.path.parent.iterdir()) == [nb.path.name], (
        "everything in source/<assignment>/ is released to learners: answer keys live in answer-keys/"
    )

    grade_ids = [nbg_meta(c)["grade_id"] for c in notebook.cells if nbg_meta(c)]
    assert len(grade_ids) == len(set(grade_ids)), "grade_id must be unique"
    heading = ""  # the last "### 문제 …" line: it states the question's points
    for cell in notebook.cells:
        meta = nbg_meta(cell)
        if cell.cell_type == "markdown" and not meta.get("solution"):
            heading = next((line for line in cell.source.splitlines() if line.startswith("### 문제")), heading)
        if cell.cell_type == "code":
            assert not cell.get("outputs"), "source notebooks are kept without outputs"
        if "BEGIN SOLUTION" in cell.source:
            assert meta.get("solution"), f"solution region outside a solution cell: {meta}"
        if "BEGIN HIDDEN TESTS" in cell.source:
            assert meta.get("grade") and not meta.get("solution") and meta.get("locked")
        if not meta:
            continue
        assert meta["schema_version"] == 3
        if meta.get("grade"):
            assert meta["points"] > 0
            assert f"({meta['points']}점" in heading, f"{meta['grade_id']}: the question heading states its points"
            if cell.cell_type == "code" and not meta.get("solution"):
                assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source
                assert re.search(r'assert .+, "[^"]*[가-힣]', cell.source), "assertion messages are Korean"
                assert cell.source.startswith("# 확인 셀"), "test cells tell the learner to just run them"
    auto, manual = points(nb)
    assert auto > 0 and manual > 0, "each notebook has autograded and manually graded parts"
    assert any(c.cell_type == "markdown" and nbg_meta(c).get("grade") and nbg_meta(c).get("solution")
               for c in notebook.cells), "a written answer graded by a person"

    intro = notebook.cells[0].source
    assert intro.startswith("# ")
    assert "예상 시간" in intro and ("오늘 배울 것" in intro or "오늘 할 것" in intro)
    assert f"자동 채점 {auto}점 + " in intro and f"채점 {manual}점 = 모두 {auto + manual}점" in intro, "total points stated"
    assert "from donghaeng.toolkit.widgets." in code_text(nb), "at least one widget exercise"

    # Nothing may need the network or a model while learning or autograding.
    text = nb.path.read_text(encoding="utf-8")
    for forbidden in ("import requests", "import httpx", "urllib", "transformers", "import torch", "http://", "https://"):
        assert forbidden not in text, forbidden
    # An answers file in the source folder would be released to learners and, worse, copied over
    # every learner's own file by autograde.
    assert not (nb.path.parent / ANSWERS_FILE).exists()

# A beginner's pace, as learners of the pilot classes need it: new material read at 250 characters a minute,
# 3 minutes for each cell they run and answer (read the tool, pick, save, check), 5 for each written answer,
# half a minute to run each check cell.
READ_CHARS_PER_MINUTE, MINUTES_PER_ACTIVITY, MINUTES_PER_WRITTEN, MINUTES_PER_CHECK = 250, 3, 5, 0.5


def paced_minutes(nb: Nb) -> float:
    cells = read_nb(nb.path).cells
    reading = sum(len(c.source) for c in cells if c.cell_type == "markdown") / READ_CHARS_PER_MINUTE
    written = sum(1 for c in cells if c.cell_type == "markdown" and nbg_meta(c).get("solution"))
    checks = sum(1 for c in cells if is_test_cell(c))
    activities = sum(1 for c in cells if c.cell_type == "code") - checks
    return reading + MINUTES_PER_ACTIVITY * activities + MINUTES_PER_WRITTEN * written + MINUTES_PER_CHECK * checks


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_stated_time_is_a_beginners_pace_and_the_schedule_agrees(nb: Nb):
    """A learner who is told 45 minutes and needs an hour feels slow: the time the notebook states (and the
    learner home shows, from schedule.toml) is at least what a beginner's pace needs."""
    stated = int(re.search(r"예상 시간: \*\*약 (\d+)분\*\*", read_nb(nb.path).cells[0].source).group(1))
    schedule = tomllib.loads((REPO / "assignments" / nb.course / "schedule.toml").read_text(encoding="utf-8"))
    assert schedule[nb.assignment]["minutes"] == stated, "schedule.toml and the notebook state the same time"
    assert stated >= paced_minutes(nb), f"{nb}: {stated} minutes stated, a beginner needs {paced_minutes(nb):.0f}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_no_cell_loads_the_model_or_trains(nb: Nb):
    """Widgets call the model only when a learner presses a button; plain execution never does."""
    for cell in read_nb(nb.path).cells:
        if cell.cell_type == "code":
            found = MODEL_CALLS.search(cell.source)
            assert found is None, f"{nbg_meta(cell).get('grade_id', cell.get('id'))}: {found and found.group(0)}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_every_widget_question_has_a_known_answer(nb: Nb):
    ids = question_ids(nb)
    assert len(ids) == code_text(nb).count("choice_question("), "question ids are plain string literals"
    assert len(ids) == len(set(ids))
    key = answer_key(nb)
    loaded = graded_answer_ids(nb)
    assert set(key) == loaded, "the answer key answers exactly the widget answers that test cells read"
    for qid in key:
        assert qid.startswith(f"{nb.assignment}."), "question ids are prefixed with the assignment"
        assert qid in code_text(nb).replace(f'load_answer("{qid}")', ""), "each saved answer comes from a widget"
    for qid in ids:
        assert qid in loaded, "each choice question has a test cell"
    widgets_with_id = re.findall(r"""question_id\s*=\s*["']([^"']+)["']""", code_text(nb))
    assert set(widgets_with_id) <= loaded


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_answer_key_for_trainers(nb: Nb):
    key = (nb.keys_dir / f"{nb.assignment}.md").read_text(encoding="utf-8")
    auto, manual = points(nb)
    assert key.startswith("# 정답과 해설")
    assert f"모두 {auto + manual}점" in key and "루브릭" in key
    assert nb.assignment in key and "예상 시간" in key
    for value in answer_key(nb).values():
        if isinstance(value, str) and len(value) < 80:
            assert value in key, f"the answer key names the right option: {value}"


# ------------------------------------------------------------------------------ widgets, driven for real
def widget_cells(nb: Nb) -> list[str]:
    """Sources of the locked cells that build a widget whose answer a test cell reads."""
    loaded = graded_answer_ids(nb)
    return [c.source for c in read_nb(nb.path).cells
            if c.cell_type == "code" and not nbg_meta(c).get("grade") and "donghaeng.toolkit.widgets" in c.source
            and any(qid in c.source for qid in loaded)]


def build_widget(source: str, namespace: dict):
    """Run a widget cell like Jupyter does and return the value of its last expression."""
    tree = ast.parse(source)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), "a widget cell ends with the widget"
    exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - the course's own cell
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)  # noqa: S307


class QuietModel:
    """The model's place in a click-through: each run ends at once with an empty answer.

    A graded playground saves how many runs a learner made (a rubric asks for two); what the model
    writes is never graded, so these runs need no model.
    """

    name = "quiet"
    context_length = 8192

    def tokenize(self, prompt: str) -> list[str]:
        return prompt.split()

    def complete(self, prompt: str, **settings) -> list[str]:
        return []


def answer_like_a_learner(widget, value, *, wrong_choice: bool = False) -> None:
    """Put *value* into the real widget and press its save button (cwd = the notebook folder)."""
    from donghaeng.toolkit.widgets.playground import PromptPlayground
    from donghaeng.toolkit.widgets.quiz import CheckboxQuestion, DropdownsQuestion, NumberQuestion
    from donghaeng.toolkit.widgets.responsible import BiasProbe, HallucinationCheck, TextEditExercise

    if isinstance(widget, ChoiceQuestion):
        if wrong_choice:
            value = next(option for option in widget.options if option != value)
        widget.choices.value = value
    elif isinstance(widget, NumberQuestion):
        widget.number.value = value
    elif isinstance(widget, CheckboxQuestion):
        for box in widget.boxes:
            box.value = box.description in value
    elif isinstance(widget, DropdownsQuestion):
        for row, dropdown in widget.dropdowns.items():
            dropdown.value = value[row]
    elif isinstance(widget, PromptPlayground):
        widget.fields_a.set_values(value["task"], value["context"], value["references"])
        widget.temperature.value = value["temperature"]
        widget.top_p.value = value["top_p"]
        widget.max_tokens.value = value["max_tokens"]
        widget._client = QuietModel()
        for _run in range(value.get("runs", 0)):  # a graded playground counts the runs before the save
            widget.run_button.click()
    elif isinstance(widget, TextEditExercise):  # masking personal data, correcting a draft
        widget.editor.value = value
    elif isinstance(widget, HallucinationCheck):
        assert widget.sentences == value["sentences"]
        for box, mark in zip(widget.checkboxes, value["supported"], strict=True):
            box.value = mark
    elif isinstance(widget, BiasProbe):
        widget.note.value = value
    else:
        raise AssertionError(f"unknown widget {type(widget).__name__}")
    widget.save_button.click()


def click_through(nb: Nb, folder: Path, *, wrong_choices: bool = False) -> None:
    """Answer every graded widget of *nb* in *folder* by clicking, with the answer key's values."""
    key = answer_key(nb)
    with contextlib.chdir(folder):
        for source in widget_cells(nb):
            widget = build_widget(source, {})
            qid = widget.question_id
            answer_like_a_learner(widget, key[qid], wrong_choice=wrong_choices)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_answer_key_is_what_the_real_widgets_save(nb: Nb, tmp_path):
    click_through(nb, tmp_path)
    assert load_all(tmp_path) == answer_key(nb)

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    click_through(nb, wrong, wrong_choices=True)
    saved = load_all(wrong)
    for qid in question_ids(nb):
        assert saved[qid] != answer_key(nb)[qid]


# ------------------------------------------------------------------------------ self-check questions
def practice_cells(nb: Nb) -> list[tuple[str, str]]:
    """(setup cell, learner cell) of every self-check Question."""
    cells = read_nb(nb.path).cells
    pairs = []
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and SELF_CHECK_ID.search(cell.source):
            pairs.append((cell.source, cells[i + 1].source))
    return pairs


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_self_check_solutions_pass_their_own_check(nb: Nb, tmp_path, monkeypatch):
    ids = SELF_CHECK_ID.findall(code_text(nb))
    if not ids:
        assert not nb.solutions_path.exists(), "solutions only for notebooks with self-check questions"
        return
    solutions = json.loads(nb.solutions_path.read_text(encoding="utf-8"))
    assert sorted(solutions) == sorted(ids)
    # As released by `donghaeng course release-solutions`, read from the learner's folder.
    released = tmp_path / "solutions" / nb.course
    released.mkdir(parents=True)
    shutil.copy(nb.solutions_path, released / nb.solutions_path.name)
    folder = tmp_path / "home" / nb.course / nb.assignment
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, str(tmp_path / "solutions"))
    monkeypatch.setattr(exercises, "display", lambda _feedback: None)

    for setup, starter in practice_cells(nb):
        namespace: dict = {}
        exec(setup, namespace)  # noqa: S102
        question = next(v for v in namespace.values() if isinstance(v, exercises.Question))
        assert question.id.startswith(f"{nb.assignment}.")
        exec(starter, namespace)  # noqa: S102 - the learner's cell as released: "not answered yet"
        assert question.last_kind == "empty", question.id
        assert question.hint() and question.hints
        solution = question.solution()
        assert solution and question.last_kind == "solution"
        exec(solutions[question.id]["code"], namespace)  # noqa: S102
        assert question.last_kind == "correct", (question.id, question.last_message)


# ------------------------------------------------------------------------------ hidden tests, in-process
# (assignment, test cell, the learner's variables, saved widget answers (from the answer key), passes?, message words)
VARIANTS = [
    # m1 Q2 is the tokenizer's count, not the number of words; Q3 needs every true statement and no false one
    ("m1-first-steps", "m1-q2-test", {}, lambda key: {**key, "m1-first-steps.q2": 6}, False, "낱말 수"),
    ("m1-first-steps", "m1-q3-test", {}, lambda key: {**key, "m1-first-steps.q3": key["m1-first-steps.q3"][:1]},
     False, "다음 토큰 보기"),
    # T3 grades with m1's real rubric: a criterion the rubric does not have (spelling) is a mistake
    ("t3-grading-calibration", "t3-q1-test", {},
     lambda key: {**key, "t3-grading-calibration.q1": [*key["t3-grading-calibration.q1"], "글이 길고 맞춤법이 정확해요"]},
     False, "맞춤법"),
    ("t3-grading-calibration", "t3-q2-test", {},
     lambda key: {**key, "t3-grading-calibration.q2": ["맡길 일이 구체적이에요", "조심할 점을 하나 이상 썼어요"]},
     False, "'보고서'는 막연하고"),
    # m3 Q3: a pair the model must not copy (an excuse, not an apology) is named; a missing good pair too
    ("m3-prompting", "m3-q3-test", {},
     lambda key: {**key, "m3-prompting.shots": [*key["m3-prompting.shots"],
                                                "후기: 빵이 다 식어 있었어요 → 답장: 저희 빵은 원래 식혀서 드셔야 더 맛있어요."]},
     False, "변명하는 답장"),
    ("m3-prompting", "m3-q3-test", {}, lambda key: {**key, "m3-prompting.shots": key["m3-prompting.shots"][:2]}, False,
     "빠뜨렸어요"),
    # m3 Q1: the sentences to look at again are named by their beginning
    ("m3-prompting", "m3-q1-test", {},
     lambda key: {**key, "m3-prompting.q1": {**key["m3-prompting.q1"], "우리 가게는 아파트 단지 앞에 있는 작은 꽃집이에요.": "참고 자료"}},
     False, "다시 볼 문장: 「우리 가게는 아파트 단지 앞에…」."),
    # T4's flawed plan: missing one of its three problems is a mistake, explained with the checklist
    ("t4-teach-back", "t4-q1-test", {}, lambda key: {**key, "t4-teach-back.q1": key["t4-teach-back.q1"][:2]}, False,
     "점검표와 다시 견주어"),
    # m5 Q5 is the sum the learner adds up, not the AI's wrong total or the code corner's other menu
    ("m5-keep-growing", "m5-q5-test", {}, lambda key: {**key, "m5-keep-growing.q5": 38}, False, "다시 더해"),
    ("m5-keep-growing", "m5-q5-test", {}, lambda key: {**key, "m5-keep-growing.q5": 52}, False, "카페라테 줄"),
    ("m2-work-smarter", "m2-q3-test", {},
     lambda key: {**key, "m2-work-smarter.decisions": [*key["m2-work-smarter.decisions"],
                                                       "6. 이 대리가 작년 행사 때 손님이 많았다고 말했어요."]},
     False, "의견(1번, 6번)"),
    # m2 Q4: a faithful line that is not a decision is not "different from the minutes"
    ("m2-work-smarter", "m2-q4-test", {},
     lambda key: {**key, "m2-work-smarter.summary_check": [*key["m2-work-smarter.summary_check"],
                                                           "5. 작년 행사 때 손님이 많았다는 이야기도 나왔어요."]},
     False, "5번 줄은 회의록 6번"),
    ("m4-responsible-ai", "m4-q6-test", {},
     lambda key: {**key, "m4-responsible-ai.pii_mask": key["m4-responsible-ai.pii_mask"].replace("[이름]", "박○○")
                  .replace("[전화번호]", "010-****-****")}, True, ""),
    ("m4-responsible-ai", "m4-q6-test", {},
     lambda key: {**key, "m4-responsible-ai.pii_mask": key["m4-responsible-ai.pii_mask"].replace("[이름]", "박서연")}, False,
     "박서연"),
    ("m4-responsible-ai", "m4-q6-test", {}, lambda key: {**key, "m4-responsible-ai.pii_mask": "[이름] [전화번호]"}, False,
     "환불"),
    # the memo's facts must stay: two words of it are not a masked memo
    ("m4-responsible-ai", "m4-q6-test", {}, lambda key: {**key, "m4-responsible-ai.pii_mask": "환불 배송"}, False,
     "전기포트"),
    # m4 Q3: the biased lines go, whatever the wording; the ad's facts stay
    ("m4-responsible-ai", "m4-q3-test", {},
     lambda key: {**key, "m4-responsible-ai.job_ad": "\n".join(
         line for line in key["m4-responsible-ai.job_ad"].splitlines() if "누구나" not in line)}, True, ""),
    ("m4-responsible-ai", "m4-q3-test", {},
     lambda key: {**key, "m4-responsible-ai.job_ad": key["m4-responsible-ai.job_ad"] + "\n- 20~30대 젊은 여성이면 좋아요."},
     False, "젊은 여성"),
    ("m4-responsible-ai", "m4-q3-test", {}, lambda key: {**key, "m4-responsible-ai.job_ad": "가나다라마바사아자차카타파하가나다라마바사"},
     False, "세금계산서"),
    ("m4-responsible-ai", "m4-q4-test", {},
     lambda key: {**key, "m4-responsible-ai.hallucination": {**key["m4-responsible-ai.hallucination"],
                                                             "supported": [True] * 5}}, False, "접종 기간"),
    # m2 Q2: swapped dates, and a last line that asks instead of opening a sentence for the base model
    ("m2-work-smarter", "m2-q2-test", {},
     lambda key: {**key, "m2-work-smarter.mail_start": {**key["m2-work-smarter.mail_start"],
                                                        "③ 원래 받기로 한 날": "3월 18일(화)", "④ 새로 받고 싶은 날": "3월 14일(금)"}},
     False, "날짜를 다시 보세요"),
    ("m2-work-smarter", "m2-q2-test", {},
     lambda key: {**key, "m2-work-smarter.mail_start": {**key["m2-work-smarter.mail_start"],
                                                        "⑤ 마지막 줄": "위 내용으로 정중한 메일을 대신 써 주세요."}},
     False, "끝나지 않은 문장"),
    ("m3-prompting", "m3-q4-test", {}, lambda key: {k: v for k, v in key.items() if k != "m3-prompting.final_prompt"},
     False, "아직 저장한 프롬프트가 없어요"),
]  # m3-q4-test's partial credit (a rubric) is tested in test_graders.py


@pytest.mark.parametrize(("assignment", "cell_id", "variables", "saved", "passes", "words"), VARIANTS,
                         ids=[f"{v[1]}-{i}" for i, v in enumerate(VARIANTS)])
def test_hidden_tests_accept_other_good_answers_and_explain_mistakes(
        assignment, cell_id, variables, saved, passes, words, tmp_path, monkeypatch):
    """Hidden tests check properties, never one exact text, and tell the learner what to look at in Korean."""
    nb = next(nb for nb in NOTEBOOKS if nb.assignment == assignment)
    cells = read_nb(nb.path).cells
    index = next(i for i, c in enumerate(cells) if nbg_meta(c).get("grade_id") == cell_id)
    monkeypatch.chdir(tmp_path)
    if saved is not None:
        (tmp_path / ANSWERS_FILE).write_text(json.dumps(saved(answer_key(nb)), ensure_ascii=False), encoding="utf-8")
    namespace = dict(variables)
    # the given cells above the test (options lists, the texts the widgets show), not the other tests
    for cell in cells[:index]:
        if cell.cell_type == "code" and nbg_meta(cell).get("locked") and not nbg_meta(cell).get("grade"):
            with contextlib.redirect_stdout(io.StringIO()):
                exec(cell.source, namespace)  # noqa: S102
    with contextlib.redirect_stdout(io.StringIO()):
        if passes:
            exec(cells[index].source, namespace)  # noqa: S102
            return
        with pytest.raises(AssertionError) as failed:
            exec(cells[index].source, namespace)  # noqa: S102
    assert words in str(failed.value)
    assert re.search("[가-힣]", str(failed.value))


def test_t2_roster_example_matches_the_real_roster_reader(tmp_path):
    """The bad rows of T2's roster exercise are the ones `donghaeng cohort import` rejects."""
    from donghaeng.common.roster import RosterError, read_roster

    nb = next(nb for nb in NOTEBOOKS if nb.assignment == "t2-running-the-lab")
    cells = {nbg_meta(c).get("grade_id"): c.source for c in read_nb(nb.path).cells}
    table = [line for line in cells["t2-q2-intro"].splitlines() if line.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split("|")][1:]
    rows = [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in table[1:]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for expected_row, (number, *cells_) in enumerate(rows, start=2):
        assert int(number) == expected_row
        writer.writerow(cells_)
    roster = tmp_path / "명단.csv"
    roster.write_text(out.getvalue(), encoding="utf-8")
    with pytest.raises(RosterError) as err:
        read_roster(roster, ["ai-basics", "ttt"])
    rejected = {problem.row for problem in err.value.problems}

    ticked = answer_key(nb)["t2-running-the-lab.q2"]  # e.g. "3행 (이수민)"
    assert rejected == {int(option.split("행")[0]) for option in ticked}


def test_curriculum_doc_lists_every_assignment():
    doc = (REPO / "docs" / "curriculum.md").read_text(encoding="utf-8")
    for nb in NOTEBOOKS:
        auto, manual = points(nb)
        assert nb.assignment in doc
        assert f"{auto + manual}점" in doc


# ------------------------------------------------------------------------------ nbgrader pipeline
def nbgrader(root: Path, *args: str) -> str:
    env = dict(os.environ)
    # nbgrader runs `alembic` from PATH when it creates the gradebook.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    # A notebook that touched the model during plain execution would fail instead of loading it.
    env["DONGHAENG_MODEL_PATH"] = "/nonexistent/donghaeng-model.gguf"
    env.pop("DONGHAENG_MODEL_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{output}"
    return output


# Every later cell that mentions `assert` becomes `pass` in the learner's kernel.
FORGERY = ("get_ipython().input_transformers_cleanup.append("
           "lambda L: ['pass\\n'] if any('assert' in l for l in L) else L)")


def fill_solutions(source_nb: Path, release_nb: Path, dest: Path) -> None:
    """Write the release notebook with every solution cell's source taken from the source notebook."""
    source = {nbg_meta(c)["grade_id"]: c for c in read_nb(source_nb).cells if nbg_meta(c)}
    notebook = nbformat.read(release_nb, as_version=4)
    for cell in notebook.cells:
        meta = nbg_meta(cell)
        if meta.get("solution"):
            cell.source = source[meta["grade_id"]].source
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, dest)


@dataclass
class Graded:
    nb: Nb
    root: Path

    @property
    def release(self) -> Path:
        return self.root / "release" / self.nb.assignment / f"{self.nb.name}.ipynb"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def gradebook(self) -> Gradebook:
        return Gradebook(self.db_url, course_id=self.nb.course)

    def feedback(self, student: str) -> str:
        path = self.root / "feedback" / student / self.nb.assignment / f"{self.nb.name}.html"
        return path.read_text(encoding="utf-8")

    def autograded(self, student: str) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "autograded" / student / self.nb.assignment / f"{self.nb.name}.ipynb", 4)


def grade_by_hand(root: Path, course: str) -> None:
    """The trainer gives full marks to the written answers of "good" and leaves a comment."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=course) as gb:
        for nb in (nb for nb in NOTEBOOKS if nb.course == course):
            submission = gb.find_submission_notebook(nb.name, nb.assignment, "good")
            for grade in submission.grades:
                if grade.needs_manual_grade:
                    grade.manual_score = grade.max_score
            for comment in submission.comments:
                comment.manual_comment = "잘 썼어요. 다음 모듈에서도 이렇게 해 봐요!"
        gb.db.commit()


def write_course_config(root: Path, course: str, autograde: Autograde = PROCESS_SANDBOX) -> None:
    """A throw-away course folder's nbgrader_config.py, loading the lab's grading config."""
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"load_subconfig({str(GRADERS_CONFIG)!r})\n"
        f"c.CourseDirectory.course_id = {course!r}\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        + autograde_config(autograde, hide_paths=[GRADERS_CONFIG.parent]),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def course_roots(tmp_path_factory) -> dict[str, Path]:
    """Each course graded once: generate, submit, autograde and give feedback for all its notebooks."""
    roots = {}
    for course in COURSES:
        root = tmp_path_factory.mktemp(f"course-{course}")
        shutil.copytree(REPO / "assignments" / course / "source", root / "source")
        write_course_config(root, course)
        roots[course] = root

    def each_course(step):
        with ThreadPoolExecutor(max_workers=len(roots)) as pool:
            list(pool.map(step, roots.items()))

    each_course(lambda item: nbgrader(item[1], "generate_assignment", "*"))

    # Submissions are made in this process, one after the other (clicking needs the working directory).
    for nb in NOTEBOOKS:
        root = roots[nb.course]
        release = root / "release" / nb.assignment / f"{nb.name}.ipynb"
        good = root / "submitted" / "good" / nb.assignment
        fill_solutions(nb.path, release, good / release.name)
        shutil.copy(nb.answers_path, good / ANSWERS_FILE)

        empty = root / "submitted" / "empty" / nb.assignment
        empty.mkdir(parents=True)
        shutil.copy(release, empty / release.name)

        wrong = root / "submitted" / "widget-wrong" / nb.assignment
        fill_solutions(nb.path, release, wrong / release.name)
        click_through(nb, wrong, wrong_choices=True)

        # nothing typed and wrong clicks, once as is and once with a kernel trick in a cell of their own
        for student, tricks in (("clicks", []), ("forger", [nbformat.v4.new_code_cell(FORGERY)])):
            folder = root / "submitted" / student / nb.assignment
            notebook = nbformat.read(release, as_version=4)
            notebook.cells[:0] = tricks
            folder.mkdir(parents=True)
            nbformat.write(notebook, folder / release.name)
            click_through(nb, folder, wrong_choices=True)

    each_course(lambda item: nbgrader(item[1], "autograde", "*"))
    for course, root in roots.items():
        grade_by_hand(root, course)
    each_course(lambda item: nbgrader(item[1], "generate_feedback", "*"))
    return roots


@pytest.fixture(params=NOTEBOOKS, ids=str)
def graded(request, course_roots) -> Graded:
    nb: Nb = request.param
    return Graded(nb, course_roots[nb.course])


@pytest.mark.slow
def test_release_has_no_solutions_or_hidden_tests(graded: Graded):
    source = {nbg_meta(c)["grade_id"]: c for c in read_nb(graded.nb.path).cells if nbg_meta(c)}
    release = nbformat.read(graded.release, as_version=4)
    nbformat.validate(release)
    text = graded.release.read_text(encoding="utf-8")
    released_sources = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    for cell in release.cells:
        meta = nbg_meta(cell)
        original = source[meta["grade_id"]].source if meta else cell.source
        if meta and source[meta["grade_id"]].metadata.get("jupyter", {}).get("source_hidden"):
            assert cell.metadata["jupyter"]["source_hidden"], "code folded away in the source stays folded"
        if meta.get("solution") and cell.cell_type == "code":
            for stub in KOREAN_STUBS:
                assert stub in cell.source
            solution = original.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in filter(None, (x.strip() for x in solution.splitlines())):
                assert line not in cell.source
        elif meta.get("solution"):
            assert cell.source == "여기에 답을 써 주세요."
        if "### BEGIN HIDDEN TESTS" in original:
            hidden = original.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            for line in (x.strip() for x in hidden.splitlines()):
                if len(line) >= 8:  # not a lone bracket
                    assert line not in released_sources
    assert not (graded.release.parent / ANSWERS_FILE).exists()


@pytest.mark.slow
def test_autograde_gives_full_points_to_correct_and_zero_to_empty(graded: Graded):
    auto, manual = points(graded.nb)
    with graded.gradebook() as gb:
        good = gb.find_submission(graded.nb.assignment, "good")
        empty = gb.find_submission(graded.nb.assignment, "empty")
        assert good.max_code_score == auto > 0
        assert good.code_score == good.max_code_score
        assert empty.code_score == 0
        assert good.max_written_score == manual > 0  # the reflection is graded by a person
        for grade in gb.find_submission_notebook(graded.nb.name, graded.nb.assignment, "empty").grades:
            assert (grade.score or 0) == 0, grade.name
    # The correct submission runs from top to bottom without a single error, and without the model.
    for cell in graded.autograded("good").cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", (nbg_meta(cell).get("grade_id"), output.get("evalue"))


@pytest.mark.slow
def test_a_kernel_trick_earns_no_points(graded: Graded):
    """The issue's probe: with it, stock nbgrader turned every later test into `pass` (m1: 4/9)."""
    with graded.gradebook() as gb:
        def grades(student: str) -> dict[str, float]:
            notebook = gb.find_submission_notebook(graded.nb.name, graded.nb.assignment, student)
            return {grade.name: grade.auto_score for grade in notebook.grades}

        assert grades("forger") == grades("clicks")
        assert gb.find_submission(graded.nb.assignment, "forger").code_score < points(graded.nb)[0]


@pytest.mark.slow
def test_feedback_is_korean_and_shows_the_score(graded: Graded):
    with graded.gradebook() as gb:
        good = gb.find_submission(graded.nb.assignment, "good")
        score, max_score = good.score, good.max_score
    assert score == max_score > 0
    html = graded.feedback("good")
    assert '<html lang="ko">' in html
    assert '"Nanum Gothic"' in html and '"Noto Sans KR"' in html
    assert f"{graded.nb.name} (점수: {float(score)} / {float(max_score)})" in html
    assert "자동 채점 확인" in html and "내가 쓴 답" in html
    assert "강사 의견:" in html and "잘 썼어요." in html
    for english in ENGLISH_FEEDBACK:
        assert english not in html, english
    if question_ids(graded.nb):
        qid = question_ids(graded.nb)[0]
        assert "저장된 답: " + answer_key(graded.nb)[qid] in html

    empty = graded.feedback("empty")
    assert f"(점수: 0.0 / {float(max_score)})" in empty
    assert "다시" in empty or "아직" in empty, "Korean hints from the assertion messages reach the learner"
    # no bare Python traceback: each error is said in Korean, the traceback folded away for the trainer
    assert 'output_error">' not in empty


@pytest.mark.slow
def test_widget_answer_saved_by_clicking_reaches_autograde(graded: Graded):
    nb = graded.nb
    source = read_nb(nb.path)
    choice_ids = question_ids(nb)
    choice_cells = [nbg_meta(c)["grade_id"] for c in source.cells
                    if nbg_meta(c).get("grade") and any(f'load_answer("{q}")' in c.source for q in choice_ids)]
    other_cells = [nbg_meta(c)["grade_id"] for c in source.cells
                   if nbg_meta(c).get("grade") and c.cell_type == "code" and nbg_meta(c)["grade_id"] not in choice_cells]
    assert choice_cells
    # the answers file travelled with the submission into the autograded folder
    autograded = graded.root / "autograded" / "widget-wrong" / nb.assignment
    assert load_all(autograded) == load_all(graded.root / "submitted" / "widget-wrong" / nb.assignment) != {}
    with graded.gradebook() as gb:
        for cell in choice_cells:  # a wrong option clicked in the real widget scores nothing
            assert gb.find_grade(cell, nb.name, nb.assignment, "widget-wrong").auto_score == 0, cell
        for cell in other_cells:  # everything else was answered correctly
            grade = gb.find_grade(cell, nb.name, nb.assignment, "widget-wrong")
            assert grade.auto_score == grade.max_score, cell


# ------------------------------------------------------------------------------ answers.py
def test_save_and_load_round_trip_keeps_other_answers(tmp_path):
    assert load_answer("q1", directory=tmp_path) is None
    assert load_answer("q1", "없음", directory=tmp_path) == "없음"
    save_answer("q1", "가", directory=tmp_path)
    save_answer("q2", {"고른 것": [1, 2]}, directory=tmp_path)
    save_answer("q1", "나", directory=tmp_path)
    assert load_answer("q1", directory=tmp_path) == "나"
    assert load_answer("q2", directory=tmp_path) == {"고른 것": [1, 2]}
    text = (tmp_path / ANSWERS_FILE).read_text(encoding="utf-8")
    assert "나" in text  # stored readable, not \\u escapes
    assert sorted(p.name for p in tmp_path.iterdir()) == [ANSWERS_FILE], "no temp files left behind"
    assert (tmp_path / ANSWERS_FILE).stat().st_mode & 0o777 == 0o644


def test_default_directory_is_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_answer("q", 1)
    assert json.loads((tmp_path / ANSWERS_FILE).read_text(encoding="utf-8")) == {"q": 1}
    assert load_answer("q") == 1


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2, 3]", b"\xff\xfe\x00garbage", b""])
def test_corrupt_file_does_not_crash_and_is_kept(tmp_path, content):
    path = tmp_path / ANSWERS_FILE
    path.write_bytes(content)
    assert load_answer("q1", "기본값", directory=tmp_path) == "기본값"
    assert path.read_bytes() == content, "loading never changes the file"

    save_answer("q1", "가", directory=tmp_path)
    assert load_answer("q1", directory=tmp_path) == "가"
    backups = list(tmp_path.glob(f"{ANSWERS_FILE}.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == content

    path.write_bytes(content)  # corrupt again within the same second: a second backup, none lost
    save_answer("q2", "나", directory=tmp_path)
    assert len(list(tmp_path.glob(f"{ANSWERS_FILE}.bak-*"))) == 2
    assert load_all(tmp_path) == {"q2": "나"}


def test_unserialisable_value_or_bad_id_leaves_file_alone(tmp_path):
    save_answer("q1", "가", directory=tmp_path)
    before = (tmp_path / ANSWERS_FILE).read_bytes()
    with pytest.raises(TypeError):
        save_answer("q2", object(), directory=tmp_path)
    with pytest.raises(ValueError):
        save_answer("  ", "가", directory=tmp_path)
    assert (tmp_path / ANSWERS_FILE).read_bytes() == before


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    save_answer("q1", "가", directory=tmp_path)
    before = (tmp_path / ANSWERS_FILE).read_bytes()

    def broken_replace(src, dst, **dir_fds):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(answers.os, "replace", broken_replace)
    with pytest.raises(AnswersFileError):
        save_answer("q1", "나", directory=tmp_path)
    assert (tmp_path / ANSWERS_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [ANSWERS_FILE]


# ------------------------------------------------------------------------------ widgets.py
def test_widget_saves_and_preselects_on_rerun(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    question = choice_question("w.q1", "다음 중 언어 모델이 하는 일에 가장 가까운 것은?", ["가", "나", "다"])
    assert isinstance(question, ChoiceQuestion)
    assert question.choices.value is None, "nothing is preselected before an answer was saved"
    assert question.choices.description and question.save_button.description == "저장하기"

    question.save_button.click()
    assert question.message == "먼저 답을 하나 골라 주세요."
    assert load_answer("w.q1") is None

    question.choices.value = "나"
    question.save_button.click()
    assert question.message == "저장했어요: 나"
    assert "저장했어요: 나" in question.status.value
    assert load_answer("w.q1") == "나"

    again = choice_question("w.q1", "다시 실행", ["가", "나", "다"])
    assert again.choices.value == "나"
    assert "나" in again._repr_mimebundle_()["text/plain"]


def test_widget_shows_korean_message_when_saving_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def broken_save(question_id, value, **kwargs):
        raise AnswersFileError("read-only file system")

    monkeypatch.setattr(answers, "save_answer", broken_save)
    question = choice_question("w.q1", "질문", ["가", "나"])
    question.choices.value = "가"
    question.save_button.click()  # must not raise
    assert "저장하지 못했어요" in question.message
    assert "Traceback" not in question.status.value


def test_widget_rejects_bad_definitions():
    with pytest.raises(ValueError):
        choice_question("", "질문", ["가", "나"])
    with pytest.raises(ValueError):
        choice_question("q", "질문", ["가"])
    with pytest.raises(ValueError):
        choice_question("q", "질문", ["가", "가"])


# ------------------------------------------------------------------------------ shared config
@pytest.mark.parametrize("autograde", [Autograde(), Autograde(timeout=45, sandbox="process", memory_mb=1024)])
def test_course_config_carries_lab_toml_autograde_and_korean_stubs(tmp_path, autograde):
    """What lab.toml's [autograde] says reaches nbgrader's own classes as traitlets, through the course's
    nbgrader_config.py: the file the CLI, the grading pool and formgrader all load."""
    write_course_config(tmp_path, "ai-basics", autograde)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    execute = SandboxedTwoPhaseExecute(config=config)
    assert execute.timeout == config.ExecutePreprocessor.timeout == autograde.timeout
    assert execute.sandbox == autograde.sandbox
    if autograde.sandbox == "process":
        assert execute.kernel_manager_class is SandboxKernelManager
    manager = SandboxKernelManager(config=config)
    assert (manager.memory_mb, manager.processes) == (autograde.memory_mb, autograde.processes)
    assert manager.hide_paths == [str(GRADERS_CONFIG.parent)]
    assert config.ClearSolutions.code_stub["python"] == "\n".join(KOREAN_STUBS)
    assert config.ClearSolutions.text_stub == "여기에 답을 써 주세요."
    # feedback has its own exporter, so formgrader's HTMLExporter keeps nbgrader's templates
    assert config.GenerateFeedback.exporter_class == "donghaeng.common.safe_html.FeedbackExporter"
    assert config.FeedbackExporter.template_name == "donghaeng_feedback"
    for basedir in config.FeedbackExporter.extra_template_basedirs:
        assert Path(basedir).is_dir()
    assert config.HTMLExporter.sanitize_html is True  # formgrader and feedback alike


def test_click_only_questions_save_restore_and_check_in_korean(tmp_path, monkeypatch, capsys):
    from donghaeng.toolkit.widgets.quiz import checkbox_question, number_question, show_saved

    monkeypatch.chdir(tmp_path)
    show_saved("w.n")
    assert capsys.readouterr().out.strip() == "아직 저장한 답이 없어요. 위에서 답을 고르고 '저장하기'를 눌러 주세요."
    number = number_question("w.n", "토큰 몇 개일까요?", 1, 40, unit="개", hints=["하나", "둘"])
    number.number.value = 12
    number.save_button.click()
    assert number.message == "저장했어요: 12개" and load_answer("w.n") == 12
    assert number_question("w.n", "다시", 1, 40).number.value == 12, "a re-run shows the saved number"
    hint = number.children[-1]
    hint.button.click()
    assert "하나" in hint.text.value and "둘" not in hint.text.value

    options = ["가 설명", "나 설명", "다 설명", "라 설명", "마 설명"]
    boxes = checkbox_question("w.c", "맞는 것을 모두 골라 주세요.", options)
    assert sorted(boxes.shown) == options and boxes.shown == checkbox_question("w.c", "다시", options).shown
    boxes.save_button.click()
    assert boxes.message == "먼저 답을 하나 골라 주세요." and load_answer("w.c") is None
    for box in boxes.boxes:
        box.value = box.description in ("라 설명", "가 설명")
    boxes.save_button.click()
    assert load_answer("w.c") == ["가 설명", "라 설명"], "saved in the author's order, whatever the order shown"
    show_saved("w.c")
    assert capsys.readouterr().out.startswith("저장된 답: 가 설명 / 라 설명")
    again = checkbox_question("w.c", "다시", options)
    assert [b.description for b in again.boxes if b.value] == [t for t in again.shown if t in ("가 설명", "라 설명")]


def test_drop_down_questions_save_only_when_every_row_is_picked(tmp_path, monkeypatch):
    from donghaeng.toolkit.widgets.quiz import dropdowns_question

    monkeypatch.chdir(tmp_path)
    rows = {"① 받는 곳": ["바른인쇄", "동행상사", "봄날꽃방"], "② 새 날짜": ["3월 14일(금)", "3월 18일(화)"]}
    template = "{① 받는 곳} 담당자님께\n명함 받는 날을 {② 새 날짜}로 미뤄 주실 수 있을지"
    question = dropdowns_question("w.d", "빈칸을 골라 주세요.", rows, template=template)
    assert all(dropdown.value is None for dropdown in question.dropdowns.values()), "nothing is preselected"
    assert "… 담당자님께" in question.preview.value
    question.save_button.click()
    assert question.message == "먼저 답을 하나 골라 주세요." and load_answer("w.d") is None

    question.dropdowns["① 받는 곳"].value = "바른인쇄"
    question.save_button.click()
    assert question.message == "아직 고르지 않은 칸이 있어요: '② 새 날짜'. 칸마다 하나씩 골라 주세요."
    assert load_answer("w.d") is None, "half an answer is never saved"
    question.dropdowns["② 새 날짜"].value = "3월 18일(화)"
    question.save_button.click()
    assert load_answer("w.d") == {"① 받는 곳": "바른인쇄", "② 새 날짜": "3월 18일(화)"}
    assert "바른인쇄 담당자님께" in question.preview.value and "3월 18일(화)로 미뤄" in question.filled_text()
    assert question.message == "저장했어요: '① 받는 곳' → 바른인쇄 / '② 새 날짜' → 3월 18일(화)"

    again = dropdowns_question("w.d", "다시", rows, template=template)
    assert {row: d.value for row, d in again.dropdowns.items()} == load_answer("w.d"), "a re-run shows the saved picks"
    assert [list(d.options) for d in again.dropdowns.values()] == [list(d.options) for d in question.dropdowns.values()]
    sentences = {f"{n}번 문장이에요.": ["작업", "맥락", "반복"] for n in range(1, 7)}
    shown = dropdowns_question("w.m", "단계", sentences, shuffle_rows=True, shuffle_options=False).shown_rows
    assert shown != list(sentences) and sorted(shown) == sorted(sentences), "rows are shown shuffled"
    assert dropdowns_question("w.m", "단계", sentences, shuffle_rows=True).shown_rows == shown, "the same order every run"
    with pytest.raises(ValueError):
        dropdowns_question("w.t", "틀", rows, template="{① 받는 곳}만 있는 틀")


def test_a_graded_playground_saves_how_often_it_ran_even_across_a_restart(tmp_path, monkeypatch):
    from donghaeng.toolkit.widgets.quiz import describe_prompt, graded_playground

    class BrokenModel(QuietModel):
        def complete(self, prompt: str, **settings) -> list[str]:
            raise ConnectionError("the model service is down")

    monkeypatch.chdir(tmp_path)
    playground = graded_playground("w.p", client=QuietModel())
    playground.fields_a.set_values("카네이션 예약 문구를 써 주세요.", "아파트 단지 앞 꽃집이에요.", "")
    playground.run_button.click()
    playground.save_button.click()
    assert load_answer("w.p")["runs"] == 1
    assert describe_prompt(load_answer("w.p")).endswith("(실행한 횟수: 1번)")

    restarted = graded_playground("w.p", client=BrokenModel())  # a new kernel: the history is gone
    assert restarted.fields_a.task.value == "카네이션 예약 문구를 써 주세요."
    restarted.run_button.click()  # a run that fails does not count
    assert "연결하지 못했어요" in restarted.message
    restarted._client = QuietModel()
    restarted.run_button.click()
    restarted.save_button.click()
    assert load_answer("w.p")["runs"] == 2


def test_rewrite_box_and_source_check_line_for_learners(tmp_path, monkeypatch, capsys):
    """m4's rewrite box refuses an unchanged or empty draft in Korean and keeps the saved text on a re-run;
    a source check's check cell prints its marks as one Korean line."""
    from donghaeng.toolkit.widgets.quiz import show_saved
    from donghaeng.toolkit.widgets.responsible import describe_marks, missing_facts, rewrite_exercise, words_left

    monkeypatch.chdir(tmp_path)
    draft = "- 급여: 월 250만 원\n- 20~30대 젊은 여성이면 좋아요."
    box = rewrite_exercise("w.ad", draft, "차별이 되는 줄을 고쳐 주세요.")
    box.save_button.click()
    assert box.message.startswith("아직 글을 고치지 않았어요") and load_answer("w.ad") is None
    box.editor.value = "  "
    box.save_button.click()
    assert box.message.startswith("글이 비어 있어요") and load_answer("w.ad") is None
    box.editor.value = "- 급여: 월 250만 원\n- 누구나 지원할 수 있어요."
    box.save_button.click()
    assert box.message.startswith("저장했어요") and "Traceback" not in box.status.value
    again = rewrite_exercise("w.ad", draft, "다시 실행")
    assert again.editor.value == load_answer("w.ad") and "누구나" in again._repr_mimebundle_()["text/plain"]
    assert words_left(load_answer("w.ad"), ["젊은 여성"]) == [] and words_left(draft, ["젊은 여성"]) == ["젊은 여성"]
    assert missing_facts(load_answer("w.ad"), {"급여": ["250"], "근무지": ["마포"]}) == ["근무지"]
    assert missing_facts(None, {"급여": ["250"]}) == ["급여"], "no answer has lost every fact"

    save_answer("w.h", {"sentences": ["가.", "나."], "supported": [True, False]})
    show_saved("w.h", describe=describe_marks)
    assert capsys.readouterr().out.startswith("저장된 답: 1번 근거 있음, 2번 근거 없음")
