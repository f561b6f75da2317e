"""Self-check questions (donghaeng.toolkit.exercises): what a learner sees after check(), hint(), solution()."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from donghaeng.toolkit import exercises
from donghaeng.toolkit.answers import save_answer
from donghaeng.toolkit.exercises import (
    MSG_CHECK_FAILED,
    MSG_EMPTY,
    MSG_NO_HINTS,
    MSG_NO_WIDGET_ANSWER,
    MSG_SOLUTION_LATER,
    Question,
    solutions_path,
)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list:
    """Everything the questions display, in order."""
    out: list = []
    monkeypatch.setattr(exercises, "display", out.append)
    return out


@pytest.fixture
def course_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A learner's assignment folder ~/<course>/<assignment>/ as the working directory."""
    folder = tmp_path / "home" / "ai-basics" / "m3-prompts"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("DONGHAENG_SOLUTIONS_DIR", str(tmp_path / "solutions"))
    monkeypatch.delenv("DONGHAENG_COURSE", raising=False)
    monkeypatch.delenv("DONGHAENG_ASSIGNMENT", raising=False)
    return folder


def five_tokens(value):
    return len(value) == 5, "토큰이 5개여야 해요."


def run_in_notebook(code: str, namespace: dict) -> dict:
    """Run *code* with *namespace* as its globals, like a notebook cell."""
    exec(code, namespace)  # noqa: S102 - test helper
    return namespace


def make_q(**kwargs) -> Question:
    kwargs.setdefault("var", "tokens")
    kwargs.setdefault("check", five_tokens)
    return Question("m3.q1", **kwargs)


def test_correct_answer(course_dir: Path, shown: list) -> None:
    q = make_q()
    ns = run_in_notebook("ok = q.check()", {"q": q, "tokens": ["나", "는", "오늘", "도", "!"]})
    assert ns["ok"] is True
    assert q.last_message == "정답이에요! 🎉 토큰이 5개여야 해요."
    assert q.last_kind == "correct"
    html = shown[-1]._repr_html_()
    assert "정답이에요! 🎉" in html and 'role="status"' in html and "Noto Sans KR" in html
    assert repr(shown[-1]).startswith("정답이에요!")


def test_wrong_answer_explains_why(course_dir: Path, shown: list) -> None:
    q = make_q()
    ns = run_in_notebook("ok = q.check()", {"q": q, "tokens": ["하나", "둘"]})
    assert ns["ok"] is False
    assert q.last_message == "아직이에요: 토큰이 5개여야 해요."
    assert "아직이에요" in shown[-1]._repr_html_()


def test_wrong_answer_without_a_message(course_dir: Path, shown: list) -> None:
    q = Question("m3.q2", var="answer", check=lambda v: v == 42)
    assert q.check({"answer": 41}) is False
    assert q.last_message.startswith("아직이에요: ")
    assert q.check({"answer": 42}) is True
    assert q.last_message == "정답이에요! 🎉"


def test_assertion_message_is_shown(course_dir: Path, shown: list) -> None:
    def check(value):
        if not value.endswith("요"):  # like `assert …, "…"` in a notebook (pytest rewrites asserts here)
            raise AssertionError("해요체로 끝나야 해요.")
        return True

    q = Question("m3.q3", var="sentence", check=check)
    assert q.check({"sentence": "안녕하십니까"}) is False
    assert q.last_message == "아직이에요: 해요체로 끝나야 해요."


@pytest.mark.parametrize("value", [..., None, "", "   ", "...", "…"])
def test_blank_answers_are_not_yet_answered(course_dir: Path, shown: list, value) -> None:
    q = make_q()
    assert q.check({"tokens": value}) is False
    assert q.last_message == MSG_EMPTY == "아직 답을 쓰지 않았어요 — 위 칸을 채워 주세요."
    assert q.last_kind == "empty"


def test_unchanged_starter_is_not_yet_answered(course_dir: Path, shown: list) -> None:
    q = make_q(starter=[])
    assert q.check({"tokens": []}) is False
    assert q.last_message == MSG_EMPTY


def test_missing_variable_says_to_run_the_cell(course_dir: Path, shown: list) -> None:
    q = make_q()
    ns = run_in_notebook("ok = q.check()", {"q": q})
    assert ns["ok"] is False
    assert q.last_message.startswith(MSG_EMPTY)
    assert "'tokens'" in q.last_message and "실행" in q.last_message


def test_a_crashing_check_shows_a_friendly_message(course_dir: Path, shown: list) -> None:
    q = make_q()  # len() of an int raises TypeError inside the check
    assert q.check({"tokens": 5}) is False
    assert q.last_message == MSG_CHECK_FAILED
    assert "Traceback" not in shown[-1]._repr_html_()
    assert 'role="alert"' in shown[-1]._repr_html_()


def test_widget_answer(course_dir: Path, shown: list) -> None:
    q = Question("m3.q4", answer_id="m3.choice", check=lambda v: (v == "맥락", "맥락을 더해 보세요."))
    assert q.check() is False
    assert q.last_message == MSG_NO_WIDGET_ANSWER
    save_answer("m3.choice", "작업")
    assert q.check() is False
    assert q.last_message == "아직이에요: 맥락을 더해 보세요."
    save_answer("m3.choice", "맥락")
    assert q.check() is True


def test_question_needs_one_source() -> None:
    with pytest.raises(ValueError):
        Question("x", check=bool)
    with pytest.raises(ValueError):
        Question("x", var="a", answer_id="b", check=bool)
    with pytest.raises(ValueError):
        Question("", var="a", check=bool)


def test_hints_in_order(course_dir: Path, shown: list) -> None:
    q = make_q(hints=["tokenize()를 써 보세요.", "tokens = client.tokenize(문장)"])
    assert q.hint() == "tokenize()를 써 보세요."
    assert q.last_message.startswith("힌트 1: tokenize()를 써 보세요.")
    assert ".hint(2)" in q.last_message
    assert q.hint(2) == "tokens = client.tokenize(문장)"
    assert "힌트는 2개가 전부예요." in q.last_message
    assert q.hint(99) == "tokens = client.tokenize(문장)"  # past the end: the last hint
    assert "힌트" in shown[-1]._repr_html_()


def test_no_hints(course_dir: Path, shown: list) -> None:
    q = make_q()
    assert q.hint() is None
    assert q.last_message == MSG_NO_HINTS


def test_solution_hidden_until_released(course_dir: Path, shown: list, tmp_path: Path) -> None:
    q = make_q(solution_key="m3.q1")
    assert solutions_path() == tmp_path / "solutions" / "ai-basics" / "m3-prompts.json"
    assert q.solution() is None
    assert q.last_message == MSG_SOLUTION_LATER
    assert "마감" in q.last_message

    # The trainer releases the solutions file.
    path = solutions_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"m3.q1": {"text": "문장을 토큰으로 나눠요.", "code": "tokens = client.tokenize(s)"},
                                "m3.q9": "다른 문제"}, ensure_ascii=False), encoding="utf-8")
    assert q.solution() == "문장을 토큰으로 나눠요.\ntokens = client.tokenize(s)"
    html = shown[-1]._repr_html_()
    assert "문장을 토큰으로 나눠요." in html and "<pre" in html and "client.tokenize(s)" in html


def test_solution_missing_from_the_released_file(course_dir: Path, shown: list) -> None:
    path = solutions_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"m3.q2": "다른 문제의 답"}', encoding="utf-8")
    assert make_q().solution() is None
    assert make_q().last_message is None  # a fresh question has shown nothing yet
    q = make_q()
    q.solution()
    assert q.last_message == MSG_SOLUTION_LATER


def test_broken_solutions_file(course_dir: Path, shown: list) -> None:
    path = solutions_path()
    path.parent.mkdir(parents=True)
    path.write_text("{이건 JSON이 아니에요", encoding="utf-8")
    q = make_q()
    assert q.solution() is None
    assert q.last_message == MSG_SOLUTION_LATER


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_solutions_file(course_dir: Path, shown: list) -> None:
    path = solutions_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"m3.q1": "정답"}', encoding="utf-8")
    path.chmod(0o000)
    q = make_q()
    assert q.solution() is None
    assert q.last_message == MSG_SOLUTION_LATER


def test_course_and_assignment_from_arguments_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shown: list
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DONGHAENG_SOLUTIONS_DIR", str(tmp_path / "sol"))
    monkeypatch.setenv("DONGHAENG_COURSE", "ttt")
    monkeypatch.setenv("DONGHAENG_ASSIGNMENT", "week1")
    assert solutions_path() == tmp_path / "sol" / "ttt" / "week1.json"
    assert solutions_path("ai-basics", "lab") == tmp_path / "sol" / "ai-basics" / "lab.json"
    assert solutions_path("../etc", "passwd") is None  # never leaves the solutions folder
    (tmp_path / "sol" / "ai-basics").mkdir(parents=True)
    (tmp_path / "sol" / "ai-basics" / "lab.json").write_text('{"solutions": {"m3.q1": "정답 풀이"}}',
                                                            encoding="utf-8")
    q = make_q(course="ai-basics", assignment="lab")
    assert q.solution() == "정답 풀이"


def test_default_solutions_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DONGHAENG_SOLUTIONS_DIR", raising=False)
    assert solutions_path("ai-basics", "lab") == Path("/srv/donghaeng/solutions/ai-basics/lab.json")


def test_plain_text_outside_a_notebook(course_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Without a notebook front end, IPython's display() prints the plain-text form: Korean, no HTML.
    q = make_q()
    q.check({"tokens": [1, 2, 3, 4, 5]})
    out = capsys.readouterr().out
    assert "정답이에요! 🎉" in out and "<div" not in out
