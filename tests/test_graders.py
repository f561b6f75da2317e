"""Custom graders: the prompt rubric (trainers' TOML files) and saved widget answers, with partial credit.

The unit tests grade texts and answers files directly; the slow test runs the real ``nbgrader
autograde`` on a small course whose test cells end with ``report.explain(points=N)`` and checks the
partial points that land in nbgrader's gradebook and the Korean lines on the feedback page.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.api import Gradebook
from test_assignments import write_course_config

from donghaeng.toolkit.answers import ANSWERS_FILE, save_answer
from donghaeng.toolkit.exercises import MSG_NO_WIDGET_ANSWER
from donghaeng.grading import RubricError, grade_answers, grade_prompt, load_rubric
from donghaeng.grading.rubric import MSG_NO_ANSWER, RUBRICS_DIR

REPO = Path(__file__).resolve().parent.parent
M3 = REPO / "assignments" / "ai-basics" / "source" / "m3-prompting" / "m3-prompting.ipynb"
KEY = json.loads((REPO / "assignments/ai-basics/answer-keys/m3-prompting.answers.json").read_text(encoding="utf-8"))
FINAL = KEY["m3-prompting.final_prompt"]


def playground_answer(task: str, context: str = "", references: str = "") -> dict:
    """What the playground saves (its own build_prompt composes the whole prompt)."""
    from donghaeng.toolkit.widgets.playground import build_prompt

    return {**FINAL, "task": task, "context": context, "references": references,
            "prompt": build_prompt(task, context, references)}


def earned(report) -> dict[str, float]:
    return {line.name: line.earned for line in report.lines}


# ------------------------------------------------------------------------------ rubric grading
def test_answer_key_prompt_gets_every_point():
    report = grade_prompt(FINAL, "m3-final-prompt")
    assert report.score == report.max_points == 4
    assert all(line.passed for line in report.lines)


FACTS_ONLY = "어버이날(5월 8일) 카네이션 예약은 5월 6일까지 가게 전화나 방문으로 받아요."
SCENARIO = {"작업", "맥락", "사실: 무엇을", "사실: 언제까지, 어떻게"}


@pytest.mark.parametrize(("answer", "lost", "words"), [
    (playground_answer("Write an Instagram post about carnations in three lines.",
                       "Flower shop near the apartments, for parents in their 30s and 40s.",
                       'Examples: "Thank you, mom and dad!" "Flowers for the best parents." Reserve by May 6.'),
     SCENARIO | {"한국어"}, "지금 한글 4%"),
    (playground_answer("카네이션 문구", "꽃집이에요.", ""), SCENARIO | {"예시 두 개(퓨샷)"}, "15자 이상"),
    (playground_answer(FINAL["task"], FINAL["context"], FINAL["references"].replace("031-123-4567", "010-2345-6789")),
     {"개인정보 없음"}, "전화번호"),
    (playground_answer(FINAL["task"], FINAL["context"], FACTS_ONLY + ' 예시: "감사한 마음을 꽃 한 송이에 담아 드려요."'),
     {"예시 두 개(퓨샷)"}, "(지금 1개)"),
    ({**FINAL, "runs": 1}, {"평가하고 반복하기"}, "(지금 1번)"),
], ids=["english", "too-thin", "mobile-number", "one-example", "one-run"])
def test_rubric_gives_partial_points_and_says_what_is_missing(answer, lost, words):
    report = grade_prompt(answer, "m3-final-prompt")
    assert {name for name, points in earned(report).items() if points == 0} == lost
    assert report.score == report.max_points - sum(line.points for line in report.lines if line.name in lost)
    assert words in report.text()
    for line in report.lines:  # one Korean line per criterion, whether earned or not
        assert any("가" <= ch <= "힣" for ch in line.feedback)


def test_pii_in_any_form_the_privacy_module_knows_costs_the_privacy_point():
    base = "어버이날 카네이션 예약 문구를 세 줄로 써 주세요. 손님에게 5월 6일까지 예약을 꼭 받아요. "
    for pii, name in (("900101-1234567", "주민등록번호"), ("minji@example.com", "이메일"), ("010.2345.6789", "전화번호"),
                      ("0505-123-4567", "전화번호")):
        report = grade_prompt(base + pii, "m3-final-prompt")
        privacy = next(line for line in report.lines if line.name == "개인정보 없음")
        assert privacy.earned == 0 and name in privacy.feedback, (pii, privacy)
    # a shop's landline is what its customers call: business information, not personal data
    for clean in ("가게 전화로 문의해 주세요.", "가게 전화 031-123-4567", "본점 (02) 123-4567로 전화 주세요."):
        privacy = next(line for line in grade_prompt(base + clean, "m3-final-prompt").lines if line.name == "개인정보 없음")
        assert privacy.passed, (clean, privacy)


SALAD = ("써 주세요 써줘 만들어 주세요 작성해 주세요 알려 주세요 부탁해요 꽃집 꽃방 아파트 부모님 단지 손님 카네이션 "
         "어버이날 5월 8일 예약 5월 6일 6일까지 전화 방문 예시 SNS 문구 세 줄 꼭 반드시")
BAKERY = playground_answer("소금빵 홍보 문구를 3줄로 써 주세요.", "회사가 많은 동네의 작은 빵집이에요. 퇴근길 직장인 손님이 많아요.",
                           '지난달 반응이 좋았던 글: "갓 구운 소금빵, 퇴근길에 만나요"')


@pytest.mark.parametrize(("answer", "at_most"), [
    (playground_answer(SALAD, SALAD, SALAD), 1.0),  # the rubric's words strung together, run twice
    (playground_answer(SALAD[:40], SALAD[40:90], SALAD[90:]), 1.0),  # the same words cut into three boxes
    (BAKERY, 1.5),  # the notebook's own example (another shop, one example) copied
], ids=["salad", "salad-in-pieces", "copied-example"])
def test_a_keyword_salad_or_a_copied_example_fails(answer, at_most):
    report = grade_prompt(answer, "m3-final-prompt")
    assert report.score <= at_most < report.max_points / 2, report.text()
    assert not earned(report)["예시 두 개(퓨샷)"] and not earned(report)["사실: 무엇을"]


def test_a_good_few_shot_prompt_with_the_shop_landline_gets_every_point():
    """The method m3 teaches for a base model: two example posts, the scenario's facts in sentences."""
    answer = playground_answer(
        "봄날꽃방의 어버이날 카네이션 예약 안내 글을 이어 써 주세요.",
        "우리 가게는 아파트 단지 앞 작은 꽃집이고, 단골손님은 대부분 초등학생 자녀를 둔 부모님이에요.",
        "지난해 손님들이 좋아한 글이에요.\n“부모님께 드리는 첫 카네이션, 봄날꽃방이 곱게 묶어 드려요.”\n"
        "“올해 어버이날에는 마음을 꽃으로 전해 보세요. 예쁜 바구니도 준비했어요.”\n"
        "꼭 넣을 내용: 어버이날(5월 8일) 카네이션 예약은 5월 6일까지 받아요. 전화(031-123-4567)나 방문으로 예약해요.")
    report = grade_prompt(answer, "m3-final-prompt")
    assert report.score == report.max_points, report.text()


@pytest.mark.parametrize("answer", [None, "", "   ", {}, {"task": " ", "prompt": ""}, 42])
def test_no_saved_prompt_is_zero_with_a_reason(answer):
    report = grade_prompt(answer, "m3-final-prompt")
    assert report.score == 0 and report.note == MSG_NO_ANSWER
    assert MSG_NO_ANSWER in report.text()


def test_explain_prints_the_lines_and_returns_the_scaled_score(capsys):
    report = grade_prompt(playground_answer("카네이션 문구를 써 주세요", "", ""), "m3-final-prompt")
    value = report.explain(points=8)
    out = capsys.readouterr().out
    assert value == round(report.score / 4 * 8, 2)
    assert out.count("\n") == len(report.lines) + 2 and f"합계: {value:g}/8점" in out


# ------------------------------------------------------------------------------ rubric files
def test_every_rubric_file_in_the_repo_is_valid():
    files = sorted(RUBRICS_DIR.glob("*.toml"))
    assert files
    for path in files:
        rubric = load_rubric(path.stem)
        assert rubric.total > 0 and len({c.id for c in rubric.criteria}) == len(rubric.criteria)


GOOD_CRITERION = '''
[[criteria]]
id = "task"
name = "작업"
check = "cues"
cues = ["써 주세요"]
points = 1
ok = "좋아요."
missing = "작업을 써 주세요."
'''


@pytest.mark.parametrize(("text", "words"), [
    ('title = "기준"\n' + GOOD_CRITERION.replace("points = 1", "pionts = 1"), ["criteria.0.pionts", "모르는 항목"]),
    ('title = "기준"\n' + GOOD_CRITERION.replace('missing = "작업을 써 주세요."', ""), ["criteria.0.missing", "꼭 있어야"]),
    ('title = "기준"\n' + GOOD_CRITERION.replace('check = "cues"', 'check = "regex"'), ["criteria.0.check", "정해진 값"]),
    ('title = "기준"\n' + GOOD_CRITERION.replace('cues = ["써 주세요"]', "cues = []"), ["criteria.0", "'cues' 값이 꼭"]),
    ('title = "기준"\n' + GOOD_CRITERION.replace("points = 1", "points = -1"), ["criteria.0.points", "0보다 커야"]),
    ('title = "기준"\n' + GOOD_CRITERION.replace('ok = "좋아요."', 'ok = "{score}점"'), ["criteria.0.ok", "모르는 자리표시"]),
    ('title = "기준"\n' + GOOD_CRITERION + 'pii_kinds = ["name"]\n', ["criteria.0.pii_kinds", "모르는 개인정보 종류"]),
    ('title = "기준"\n' + GOOD_CRITERION * 2, ["criteria", "id가 겹쳐요"]),
    ('title = "기준"\n' + GOOD_CRITERION.replace('check = "cues"', 'check = "facts"'), ["criteria.0", "'facts' 값이 꼭"]),
    ('title = "기준"\n' + GOOD_CRITERION + 'facts = [["5월 6일"], []]\n', ["criteria.0", "facts의 묶음마다"]),
    ('title = "기준"\n' + GOOD_CRITERION.replace('check = "cues"', 'check = "length"\nmin_chars = 1\nmax_chars = 9')
     + "in_sentences = true\n", ["criteria.0", "in_sentences는"]),
    (GOOD_CRITERION, ["'title'", "꼭 있어야"]),
    ('title = "기준"\n[[criteria]\nid = 1', ["TOML 문법"]),
])
def test_a_broken_rubric_file_is_refused_with_a_korean_message_naming_the_key(tmp_path, text, words):
    path = tmp_path / "trainer-edit.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RubricError) as err:
        load_rubric(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_missing_rubric_lists_the_ones_there_are():
    with pytest.raises(RubricError, match="채점 기준 파일이 없어요.*m3-final-prompt"):
        load_rubric("m3-final-promt")


def test_an_edited_rubric_file_takes_effect_without_a_restart(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('title = "기준"\n' + GOOD_CRITERION, encoding="utf-8")
    assert grade_prompt("보고서를 써 주세요", path).score == 1
    path.write_text('title = "기준"\n' + GOOD_CRITERION.replace('"써 주세요"', '"요약해"'), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different mtime, as an editor's save gives
    assert grade_prompt("보고서를 써 주세요", path).score == 0


# ------------------------------------------------------------------------------ the curriculum's cell
def run_cell(source: str, folder: Path) -> tuple[object, str]:
    """Run a test cell like IPython (the last expression is the cell's value) in *folder*."""
    tree = ast.parse(source)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), "a partial-credit cell ends with an expression"
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.chdir(folder), contextlib.redirect_stdout(out):
        exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - the course's own cell
        value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
    return value, out.getvalue()


@pytest.mark.parametrize(("answer", "expected"), [
    (FINAL, 4.0),
    (playground_answer("카네이션 문구를 써 주세요", "꽃집이에요.", ""), 1.5),
    (playground_answer("Write a post.", "", ""), 0.75),
])
def test_m3_prompt_cell_gives_partial_credit_from_the_rubric(tmp_path, answer, expected):
    cell = next(c for c in nbformat.read(M3, 4).cells if c.metadata.get("nbgrader", {}).get("grade_id") == "m3-q4-test")
    assert cell.metadata.nbgrader["points"] == 4
    save_answer("m3-prompting.final_prompt", answer, directory=tmp_path)
    value, out = run_cell(cell.source, tmp_path)
    assert value == expected
    assert "프롬프트 채점 기준" in out and f"합계: {expected:g}/4점" in out


# ------------------------------------------------------------------------------ widget answers
def test_widget_answers_are_graded_with_partial_credit_and_korean_reasons(tmp_path):
    save_answer("m.q1", "나", directory=tmp_path)
    save_answer("m.marks", [True, False, True, True], directory=tmp_path)
    save_answer("m.table", {"A": "작업", "B": "참고 자료", "C": "맥락"}, directory=tmp_path)
    report = grade_answers({
        "m.q1": "나",
        "m.marks": [True, False, False, True],
        "m.table": {"A": "작업", "B": "맥락", "C": "참고 자료"},
        "m.unsaved": "가",
    }, directory=tmp_path)
    assert earned(report) == {"m.q1": 1.0, "m.marks": 0.75, "m.table": pytest.approx(1 / 3, abs=1e-3),
                              "m.unsaved": 0.0}
    lines = {line.name: line.feedback for line in report.lines}
    assert lines["m.q1"] == "맞았어요." and "3/4" in lines["m.marks"] and "1/3" in lines["m.table"]
    assert lines["m.unsaved"] == MSG_NO_WIDGET_ANSWER
    assert report.explain(points=4) == round(report.score, 2)  # four questions, one point each


def test_an_unreadable_answers_file_scores_zero_without_crashing(tmp_path):
    (tmp_path / ANSWERS_FILE).write_text("{망가진", encoding="utf-8")
    report = grade_answers({"m.q1": "나"}, directory=tmp_path)
    assert report.score == 0 and report.lines[0].feedback == MSG_NO_WIDGET_ANSWER
    assert (tmp_path / ANSWERS_FILE).read_text(encoding="utf-8") == "{망가진", "the learner's file is left alone"


def test_model_output_is_graded_by_its_properties_never_its_exact_text(tmp_path):
    """Two different samples that both meet the task get the same points; one that does not, fewer."""
    def reservation_post(text: str) -> tuple[float, str]:
        lines = [line for line in str(text).splitlines() if line.strip()]
        checks = [len(lines) <= 3, "6일" in text, sum("가" <= ch <= "힣" for ch in text) >= 10]
        return sum(checks) / len(checks), "세 줄 이하·마감일·한국어를 확인했어요."

    samples = {"a": "봄날꽃방 카네이션 예약 받아요!\n5월 6일까지 전화나 방문으로 예약해 주세요.",
               "b": "감사한 마음을 한 송이에 담아요.\n카네이션 예약은 6일까지예요.\n봄날꽃방에서 기다릴게요.",
               "c": "Carnations!\nCall us.\nSoon.\nBye."}
    points = {}
    for name, text in samples.items():
        folder = tmp_path / name
        folder.mkdir()
        save_answer("m3.output", text, directory=folder)
        points[name] = grade_answers({"m3.output": reservation_post}, directory=folder).score
    assert points["a"] == points["b"] == 1 and points["c"] == 0


def test_a_rubric_can_grade_a_saved_widget_answer(tmp_path):
    save_answer("m3-prompting.final_prompt", FINAL, directory=tmp_path)
    report = grade_answers({"m3-prompting.final_prompt": load_rubric("m3-final-prompt")}, directory=tmp_path)
    assert report.score == 1 and "작업 ✔" in report.lines[0].feedback


# ------------------------------------------------------------------------------ through real nbgrader
RUBRIC_CELL = '''# 확인 셀
from donghaeng.toolkit.answers import load_answer
from donghaeng.grading import grade_prompt
grade_prompt(load_answer("p.prompt"), "m3-final-prompt").explain(points=4)'''
ANSWERS_CELL = '''# 확인 셀
from donghaeng.grading import grade_answers
grade_answers({"p.q1": "나", "p.marks": [True, False, True, True]}).explain(points=2)'''


def nbgrader(root: Path, *args: str) -> None:
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_nbgrader_stores_the_partial_points_and_shows_the_korean_lines(tmp_path):
    root = tmp_path / "course"
    source = root / "source" / "p1"
    source.mkdir(parents=True)
    meta = {"schema_version": 3, "solution": False, "grade": True, "locked": True, "task": False}
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_code_cell(RUBRIC_CELL, metadata={"nbgrader": {**meta, "grade_id": "rubric", "points": 4}}),
                new_code_cell(ANSWERS_CELL, metadata={"nbgrader": {**meta, "grade_id": "answers", "points": 2}})]
    nbformat.write(nb, source / "p1.ipynb")
    write_course_config(root, "graders")
    nbgrader(root, "generate_assignment", "p1")
    submissions = {
        "full": ({"p.prompt": FINAL, "p.q1": "나", "p.marks": [True, False, True, True]}, 4 + 2),
        "partial": ({"p.prompt": playground_answer("카네이션 문구를 써 주세요", "꽃집이에요.", ""), "p.q1": "가",
                     "p.marks": [True, False, False, True]}, 1.5 + 0.75),
        "nothing": ({}, 0),
    }
    for student, (saved, _points) in submissions.items():
        folder = root / "submitted" / student / "p1"
        folder.mkdir(parents=True)
        shutil.copy(root / "release" / "p1" / "p1.ipynb", folder / "p1.ipynb")
        (folder / ANSWERS_FILE).write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    nbgrader(root, "autograde", "p1")
    nbgrader(root, "generate_feedback", "p1")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id="graders") as gb:
        for student, (_saved, points) in submissions.items():
            assert gb.find_submission("p1", student).code_score == pytest.approx(points), student
    feedback = (root / "feedback" / "partial" / "p1" / "p1.html").read_text(encoding="utf-8")
    assert "맥락 칸에 이 꽃집이 누구에게 왜 쓰는지 15자 이상의 문장으로 써 주세요" in feedback
    assert "합계: 1.5/4점" in feedback and "일부 맞았어요(3/4)" in feedback
    assert MSG_NO_ANSWER in (root / "feedback" / "nothing" / "p1" / "p1.html").read_text(encoding="utf-8")
