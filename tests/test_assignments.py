"""The course notebooks go through the real nbgrader pipeline, and widget answers reach autograde.

For every source notebook under ``assignments/<course>/source/<assignment>/`` a throw-away,
self-contained nbgrader course directory is built (its ``nbgrader_config.py`` loads the shared
``graders/nbgrader_config.py``), then the real ``nbgrader`` CLI runs ``generate_assignment``,
``autograde`` and ``generate_feedback`` on hand-made submissions:

* ``good``: every solution cell filled from the source notebook, correct widget answers saved;
* ``empty``: the release copy as is;
* ``widget-right`` / ``widget-wrong``: solutions filled, but the widget answer is saved by clicking
  the real widget (right resp. wrong option), so only the widget test cell should differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from traitlets.config.loader import PyFileConfigLoader

from donghaeng import answers
from donghaeng.answers import ANSWERS_FILE, AnswersFileError, load_all, load_answer, save_answer
from donghaeng.widgets import ChoiceQuestion, choice_question

REPO = Path(__file__).resolve().parent.parent
GRADERS_CONFIG = REPO / "graders" / "nbgrader_config.py"
SOURCE_NOTEBOOKS = sorted(REPO.glob("assignments/*/source/*/*.ipynb"))

# Correct option of every widget question, by question id.  A new choice_question in a notebook
# must be added here (test_every_widget_question_has_a_known_answer fails otherwise).
CORRECT_CHOICES = {
    "m1-first-steps.q1": "앞에 나온 말을 보고, 다음에 올 말을 예측해서 이어 써요",
}
WRONG_CHOICE = "인터넷에서 정답을 찾아서 그대로 보여 줘요"

QUESTION_ID = re.compile(r"""choice_question\(\s*["']([^"']+)["']""")
ENGLISH_FEEDBACK = ["Score:", "Student's answer", "Student's task", "Test cell", "Comments:", "Grade cell:", "(Top)"]
KOREAN_STUBS = ["# 여기에 답을 써 주세요", "raise NotImplementedError()"]


@dataclass(frozen=True)
class Nb:
    course: str
    assignment: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    def __str__(self) -> str:
        return f"{self.course}/{self.assignment}/{self.name}"


def code_text(nb: Nb) -> str:
    """All code cell sources of the notebook (not its JSON, where quotes are escaped)."""
    notebook = nbformat.read(nb.path, as_version=4)
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")


NOTEBOOKS = [Nb(p.parents[2].name, p.parent.name, p) for p in SOURCE_NOTEBOOKS]
WIDGET_NOTEBOOKS = [nb for nb in NOTEBOOKS if "choice_question(" in code_text(nb)]


def nbg_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def question_ids(nb: Nb) -> list[str]:
    return QUESTION_ID.findall(code_text(nb))


def test_both_courses_have_notebooks():
    assert {"ai-basics", "ttt"} <= {nb.course for nb in NOTEBOOKS}
    assert WIDGET_NOTEBOOKS, "at least one notebook should use a widget exercise"


# ------------------------------------------------------------------------------ static checks
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_source_notebook_is_valid(nb: Nb):
    notebook = nbformat.read(nb.path, as_version=4)
    nbformat.validate(notebook)
    assert nb.name == nb.assignment, "one notebook per assignment, named like its folder"
    assert notebook.metadata.kernelspec.name == "python3"

    grade_ids = [nbg_meta(c)["grade_id"] for c in notebook.cells if nbg_meta(c)]
    assert len(grade_ids) == len(set(grade_ids)), "grade_id must be unique"
    auto = manual = 0
    for cell in notebook.cells:
        meta = nbg_meta(cell)
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
            if cell.cell_type == "code" and not meta.get("solution"):
                auto += meta["points"]
                assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source
                assert re.search(r'assert .+, "[^"]*[가-힣]', cell.source), "assertion messages are Korean"
            else:
                manual += meta["points"]
    assert auto > 0 and manual > 0, "each notebook has autograded and manually graded parts"

    # Nothing may need the network or a model while learning or autograding.
    text = nb.path.read_text(encoding="utf-8")
    for forbidden in ("import requests", "import httpx", "urllib", "transformers", "import torch", "http://", "https://"):
        assert forbidden not in text, forbidden
    # An answers file in the source folder would be released to learners and, worse, copied over
    # every learner's own file by autograde.
    assert not (nb.path.parent / ANSWERS_FILE).exists()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=str)
def test_every_widget_question_has_a_known_answer(nb: Nb):
    ids = question_ids(nb)
    assert len(ids) == code_text(nb).count("choice_question("), "question ids are plain string literals"
    assert len(ids) == len(set(ids))
    for qid in ids:
        assert qid.startswith(f"{nb.assignment}."), "question ids are prefixed with the assignment"
        assert qid in CORRECT_CHOICES
        assert f'load_answer("{qid}")' in code_text(nb), "each question has a test cell"


# ------------------------------------------------------------------------------ nbgrader pipeline
def nbgrader(root: Path, *args: str) -> str:
    env = dict(os.environ)
    # nbgrader runs `alembic` from PATH when it creates the gradebook.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{output}"
    return output


def fill_solutions(source_nb: Path, release_nb: Path, dest: Path) -> None:
    """Write the release notebook with every solution cell's source taken from the source notebook."""
    source = {nbg_meta(c)["grade_id"]: c for c in nbformat.read(source_nb, as_version=4).cells if nbg_meta(c)}
    notebook = nbformat.read(release_nb, as_version=4)
    for cell in notebook.cells:
        meta = nbg_meta(cell)
        if meta.get("solution"):
            cell.source = source[meta["grade_id"]].source
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, dest)


def click_widget(directory: Path, qid: str, option: str) -> None:
    """Answer like a learner: pick *option* in the real widget and press 저장하기 (cwd = notebook folder)."""
    with contextlib.chdir(directory):
        question = choice_question(qid, "테스트 질문", [CORRECT_CHOICES[qid], WRONG_CHOICE, "다른 보기"])
        question.choices.value = option
        question.save_button.click()
        assert question.message == f"저장했어요: {option}"


@dataclass
class Graded:
    nb: Nb
    root: Path
    release: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def gradebook(self) -> Gradebook:
        return Gradebook(self.db_url, course_id=self.nb.course)

    def feedback(self, student: str) -> str:
        path = self.root / "feedback" / student / self.nb.assignment / f"{self.nb.name}.html"
        return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=str)
def graded(request, tmp_path_factory) -> Graded:
    nb: Nb = request.param
    root = tmp_path_factory.mktemp(f"course-{nb.course}")
    shutil.copytree(nb.path.parent, root / "source" / nb.assignment)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"load_subconfig({str(GRADERS_CONFIG)!r})\n"
        f"c.CourseDirectory.course_id = {nb.course!r}\n"
        f"c.CourseDirectory.root = {str(root)!r}\n",
        encoding="utf-8",
    )
    nbgrader(root, "generate_assignment", nb.assignment)
    release = root / "release" / nb.assignment / f"{nb.name}.ipynb"

    submitted = root / "submitted"
    good = submitted / "good" / nb.assignment
    fill_solutions(nb.path, release, good / release.name)
    for qid in question_ids(nb):
        save_answer(qid, CORRECT_CHOICES[qid], directory=good)

    empty = submitted / "empty" / nb.assignment
    empty.mkdir(parents=True)
    shutil.copy(release, empty / release.name)

    if nb in WIDGET_NOTEBOOKS:
        for student, right in (("widget-right", True), ("widget-wrong", False)):
            folder = submitted / student / nb.assignment
            fill_solutions(nb.path, release, folder / release.name)
            for qid in question_ids(nb):
                click_widget(folder, qid, CORRECT_CHOICES[qid] if right else WRONG_CHOICE)

    nbgrader(root, "autograde", nb.assignment)

    # The instructor grades the written answers of "good" and leaves a comment.
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=nb.course) as gb:
        submission = gb.find_submission_notebook(nb.name, nb.assignment, "good")
        for grade in submission.grades:
            if grade.needs_manual_grade:
                grade.manual_score = grade.max_score
        for comment in submission.comments:
            comment.manual_comment = "잘 썼어요. 다음 모듈에서도 이렇게 해 봐요!"
        gb.db.commit()

    nbgrader(root, "generate_feedback", nb.assignment)
    return Graded(nb, root, release)


@pytest.mark.slow
def test_release_has_no_solutions_or_hidden_tests(graded: Graded):
    source = {nbg_meta(c)["grade_id"]: c for c in nbformat.read(graded.nb.path, as_version=4).cells if nbg_meta(c)}
    release = nbformat.read(graded.release, as_version=4)
    nbformat.validate(release)
    text = graded.release.read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    for cell in release.cells:
        meta = nbg_meta(cell)
        original = source[meta["grade_id"]].source if meta else cell.source
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
            for line in filter(None, (x.strip() for x in hidden.splitlines())):
                assert line not in text
    assert not (graded.release.parent / ANSWERS_FILE).exists()


@pytest.mark.slow
def test_autograde_gives_full_points_to_correct_and_zero_to_empty(graded: Graded):
    with graded.gradebook() as gb:
        good = gb.find_submission(graded.nb.assignment, "good")
        empty = gb.find_submission(graded.nb.assignment, "empty")
        assert good.max_code_score > 0
        assert good.code_score == good.max_code_score
        assert empty.code_score == 0
        assert good.max_written_score > 0  # the reflection is graded by a person
        for grade in gb.find_submission_notebook(graded.nb.name, graded.nb.assignment, "empty").grades:
            assert (grade.score or 0) == 0, grade.name


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

    empty = graded.feedback("empty")
    assert f"(점수: 0.0 / {float(max_score)})" in empty
    assert "다시" in empty or "아직" in empty, "Korean hints from the assertion messages reach the learner"


@pytest.mark.slow
@pytest.mark.parametrize("graded", WIDGET_NOTEBOOKS, indirect=True, ids=str)
def test_widget_answer_saved_by_clicking_reaches_autograde(graded: Graded):
    nb = graded.nb
    source = nbformat.read(nb.path, as_version=4)
    widget_cells = [nbg_meta(c)["grade_id"] for c in source.cells if "load_answer(" in c.source]
    other_cells = [nbg_meta(c)["grade_id"] for c in source.cells
                   if nbg_meta(c).get("grade") and c.cell_type == "code" and "load_answer(" not in c.source]
    assert widget_cells
    with graded.gradebook() as gb:
        for student, expected in (("widget-right", "full"), ("widget-wrong", "zero")):
            # the answers file travelled with the submission into the autograded folder
            autograded = graded.root / "autograded" / student / nb.assignment
            assert load_all(autograded) == load_all(graded.root / "submitted" / student / nb.assignment) != {}
            for cell in widget_cells:
                grade = gb.find_grade(cell, nb.name, nb.assignment, student)
                assert grade.auto_score == (grade.max_score if expected == "full" else 0), (student, cell)
            for cell in other_cells:  # everything else was answered correctly by both
                grade = gb.find_grade(cell, nb.name, nb.assignment, student)
                assert grade.auto_score == grade.max_score, (student, cell)
    assert "저장된 답: " + CORRECT_CHOICES[question_ids(nb)[0]] in graded.feedback("good")


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

    def broken_replace(src, dst):
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
@pytest.mark.parametrize(("env", "expected"), [(None, 30), ("45", 45), ("abc", 30), ("0", 30)])
def test_config_timeout_and_korean_stubs(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv("DONGHAENG_AUTOGRADE_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("DONGHAENG_AUTOGRADE_TIMEOUT", env)
    config = PyFileConfigLoader(GRADERS_CONFIG.name, path=str(GRADERS_CONFIG.parent)).load_config()
    assert config.ExecutePreprocessor.timeout == expected
    assert config.Execute.timeout == expected
    assert config.ClearSolutions.code_stub["python"] == "\n".join(KOREAN_STUBS)
    assert config.ClearSolutions.text_stub == "여기에 답을 써 주세요."
    assert config.HTMLExporter.template_name == "donghaeng_feedback"
    for basedir in config.HTMLExporter.extra_template_basedirs:
        assert Path(basedir).is_dir()
