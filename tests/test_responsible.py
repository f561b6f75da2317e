"""Responsible-AI exercises (masking personal data, checking sources, bias), plus a real-kernel run."""

from __future__ import annotations

import html
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import ipywidgets as widgets
import nbformat
import pytest
from fakeclients import ExplodingClient, ScriptedClient
from nbclient import NotebookClient

from donghaeng.toolkit import answers, model_client
from donghaeng.toolkit.answers import ANSWERS_FILE, load_answer
from donghaeng.toolkit.model_client import TokenProb
from donghaeng.common.privacy import mask_pii
from donghaeng.toolkit.widgets import responsible
from donghaeng.toolkit.widgets.responsible import (
    MAX_WORDS,
    MSG_BIAS_DONE,
    MSG_BIAS_EMPTY_NOTE,
    MSG_BIAS_NO_SLOT,
    MSG_BIAS_NO_WORDS,
    MSG_BIAS_SAVED,
    MSG_PII_EMPTY,
    MSG_PII_NONE_FOUND,
    MSG_PII_RESET,
    MSG_PII_SAVED_BEFORE,
    MSG_PII_SAVED_CLEAN,
    MSG_PII_UNCHANGED,
    MSG_SAVE_FAILED,
    NO_ANSWER,
    bias_probe,
    fill_template,
    hallucination_check,
    hallucination_score,
    highlight_pii,
    pii_masking_exercise,
    remaining_pii,
    split_sentences,
)

LETTER = (
    "안녕하세요, 김하늘입니다.\n"
    "주민등록번호는 900101-2345678이고, 휴대전화는 010-9876-5432예요.\n"
    "메일은 haneul.kim@example.com, 집 주소는 서울특별시 마포구 월드컵북로 396이에요.\n"
    "환불은 카드 9410-1234-5678-9012로 해 주세요. 수강료 350,000원은 2026-12-01까지 냈어요."
)


# --- a deterministic stand-in for donghaeng.toolkit.model_client ---------------------------------------
class ModelError(Exception):
    pass


class ModelBusy(ModelError):
    pass


def biased_candidates(prompt: str) -> list[TokenProb]:
    """Next words a biased model might give: a different order for 간호사 than for the other jobs."""
    words = ["여자", "남자", " 친절", "\n", "바쁘"] if "간호사" in prompt else [" 남자", "여자", "똑똑", "바쁘", " "]
    probs = [0.4, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.01, 0.005, 0.005]
    return [TokenProb(i, w, p) for i, (w, p) in enumerate(zip(words * 2, probs))]


def FakeClient(fail_on: int | None = None) -> ScriptedClient:
    """The scripted model with biased next words; the *fail_on*-th question finds the model busy."""
    busy = ModelBusy("지금은 다른 분이 AI를 쓰고 있어요. 잠시 뒤 다시 해 주세요.") if fail_on else None
    return ScriptedClient(candidates=biased_candidates, fail_on_call=fail_on, fail=busy)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def all_widgets(w: widgets.Widget) -> Iterator[widgets.Widget]:
    yield w
    for child in getattr(w, "children", ()):
        yield from all_widgets(child)


def shown_text(w: widgets.Widget) -> str:
    return html.unescape(" ".join(c.value for c in all_widgets(w) if isinstance(c, widgets.HTML)))


# =================================================================================================
# (a) masking personal data
# =================================================================================================
def test_pii_exercise_shows_the_text_and_an_editor() -> None:
    w = pii_masking_exercise("m5.pii", LETTER)
    assert "010-9876-5432" in shown_text(w)
    assert w.editor.value == LETTER
    assert w.editor.description == "가린 글"
    assert {b.description for b in all_widgets(w) if isinstance(b, widgets.Button)} == {
        "자동으로 찾아보기", "처음 글로 되돌리기", "저장하기"}


def test_find_button_highlights_what_is_left() -> None:
    w = pii_masking_exercise("m5.pii", LETTER)
    w.find_button.click()
    assert w.message.startswith("자동으로 찾은 개인정보: ")
    for name in ("주민등록번호 1개", "전화번호 1개", "이메일 1개", "주소 1개", "카드번호 1개"):
        assert name in w.message
    marked = w.highlight.value
    assert marked.count("<mark") == 5
    assert "<mark" in marked and "010-9876-5432</mark>" in marked
    assert "350,000원" in marked and "350,000원</mark>" not in marked  # prices are not personal data

    w.editor.value = w.editor.value.replace("010-9876-5432", "[전화번호]")
    w.find_button.click()
    assert "전화번호" not in w.message and w.highlight.value.count("<mark") == 4


def test_find_on_a_clean_text_reminds_about_names() -> None:
    w = pii_masking_exercise("m5.pii", LETTER)
    w.editor.value = mask_pii(LETTER)
    w.find_button.click()
    assert w.message == MSG_PII_NONE_FOUND
    assert "이름" in w.message
    assert w.highlight.value == ""


def test_saving_an_unchanged_or_empty_text_is_refused() -> None:
    w = pii_masking_exercise("m5.pii", LETTER)
    w.save_button.click()
    assert w.message == MSG_PII_UNCHANGED
    w.editor.value = "   "
    w.save_button.click()
    assert w.message == MSG_PII_EMPTY
    assert load_answer("m5.pii") is None


def test_saving_a_partly_masked_text_warns() -> None:
    w = pii_masking_exercise("m5.pii", LETTER)
    w.editor.value = LETTER.replace("010-9876-5432", "[전화번호]")
    w.save_button.click()
    assert load_answer("m5.pii") == w.editor.value
    assert w.message.startswith("저장했어요. 그런데 자동 검사로 아직 ")
    assert [f.kind for f in remaining_pii(load_answer("m5.pii"))] == [
        "resident_id", "email", "address", "card"]


def test_saving_a_well_masked_text_passes_the_autograde_check(in_tmp: Path) -> None:
    w = pii_masking_exercise("m5.pii", LETTER)
    w.editor.value = mask_pii(LETTER).replace("김하늘", "[이름]")
    w.save_button.click()
    assert w.message == MSG_PII_SAVED_CLEAN
    saved = json.loads((in_tmp / ANSWERS_FILE).read_text(encoding="utf-8"))["m5.pii"]
    assert "[전화번호]" in saved and "350,000원" in saved
    # What an autograde test cell does:
    assert not remaining_pii(load_answer("m5.pii"), names=["김하늘"])


def test_remaining_pii_for_autograde() -> None:
    assert remaining_pii(None) == [NO_ANSWER]  # never saved: the assert in the test cell fails
    assert remaining_pii("   ") == [NO_ANSWER]
    assert remaining_pii("[이름]님, 반가워요.") == []
    left = remaining_pii(mask_pii(LETTER), names=["김하늘", ""])
    assert [(f.kind, f.text, f.name) for f in left] == [("name", "김하늘", "이름")]


def test_reset_and_reopen() -> None:
    w = pii_masking_exercise("m5.pii", LETTER)
    w.editor.value = "다 지웠어요"
    w.reset_button.click()
    assert w.editor.value == LETTER and w.message == MSG_PII_RESET
    w.editor.value = mask_pii(LETTER)
    w.save_button.click()
    again = pii_masking_exercise("m5.pii", LETTER)  # the cell runs again
    assert again.editor.value == mask_pii(LETTER)
    assert again.message == MSG_PII_SAVED_BEFORE
    assert "[주소]" in again._repr_mimebundle_()["text/plain"]


def test_pii_save_failure_is_friendly(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a, **_k):
        raise answers.AnswersFileError("read-only file system")

    monkeypatch.setattr(answers, "save_answer", broken)
    w = pii_masking_exercise("m5.pii", LETTER)
    w.editor.value = mask_pii(LETTER)
    w.save_button.click()
    assert w.message == MSG_SAVE_FAILED and "read-only" not in w.status.value


def test_highlight_escapes_html() -> None:
    marked = highlight_pii("<b>010-1234-5678</b>")
    assert marked.startswith("&lt;b&gt;<mark") and "(전화번호)" in marked


# =================================================================================================
# (b) is each sentence supported by the source?
# =================================================================================================
SOURCE = "동행랩은 2026년 3월에 문을 열었어요. 수강생은 모두 40명이에요. 수업은 화요일과 목요일에 있어요."
ANSWER = "동행랩은 2026년 3월에 열었어요. 수강생은 100명이 넘어요! 수업은 화요일과 목요일이에요.\n강사는 다섯 명이에요."


def test_split_sentences() -> None:
    assert split_sentences(ANSWER) == [
        "동행랩은 2026년 3월에 열었어요.",
        "수강생은 100명이 넘어요!",
        "수업은 화요일과 목요일이에요.",
        "강사는 다섯 명이에요.",
    ]
    assert split_sentences("비율은 3.5%예요. 정말요?") == ["비율은 3.5%예요.", "정말요?"]
    assert split_sentences("") == []


def test_hallucination_check_saves_marks_per_sentence() -> None:
    w = hallucination_check(SOURCE, ANSWER, "m5.hallu")
    assert len(w.checkboxes) == 4
    assert [c.description for c in w.checkboxes] == [f"{i}번 문장: 근거 있음" for i in range(1, 5)]
    assert w.checkboxes[1].tooltip == "수강생은 100명이 넘어요!"
    assert "문을 열었어요" in shown_text(w) and "강사는 다섯 명이에요." in shown_text(w)

    w.checkboxes[0].value = True
    w.checkboxes[2].value = True
    w.save_button.click()
    assert w.message == "저장했어요: 근거 있는 문장 2개, 근거 없는 문장 2개."
    saved = load_answer("m5.hallu")
    assert saved == {"sentences": split_sentences(ANSWER), "supported": [True, False, True, False]}
    assert hallucination_score(saved, [True, False, True, False]) == 1.0

    again = hallucination_check(SOURCE, ANSWER, "m5.hallu")  # marks come back
    assert again.marks == [True, False, True, False]
    assert "근거 있음" in again._repr_mimebundle_()["text/plain"]


def test_hallucination_score() -> None:
    expected = [True, False, True, False]
    assert hallucination_score(None, expected) == 0.0
    assert hallucination_score({"supported": [True, True, True, True]}, expected) == 0.5
    assert hallucination_score({"supported": [True, False]}, expected) == 0.0  # other sentences
    assert hallucination_score({"supported": "yes"}, expected) == 0.0


def test_hallucination_check_needs_sentences() -> None:
    with pytest.raises(ValueError):
        hallucination_check(SOURCE, "   ", "m5.hallu")


# =================================================================================================
# (c) bias probe
# =================================================================================================
@pytest.mark.parametrize(
    ("template", "word", "expected"),
    [
        ("[직업]은/는 보통", "간호사", "간호사는 보통"),
        ("[직업]은/는 보통", "선생님", "선생님은 보통"),
        ("[직업]은/는 보통", "CEO", "CEO는 보통"),
        ("[직업]은/는 보통", "HR", "HR은 보통"),
        ("[직업]이/가 되려면", "엔지니어", "엔지니어가 되려면"),
        ("[직업]이/가 되려면", "경찰관", "경찰관이 되려면"),
        ("[직업]으로/로 일하는 사람은", "비서", "비서로 일하는 사람은"),
        ("[직업]으로/로 일하는 사람은", "소방관", "소방관으로 일하는 사람은"),
        ("[직업]으로/로 일하는 사람은", "호텔리어", "호텔리어로 일하는 사람은"),
        ("우리 회사 [직업]을/를 소개해요", "팀장", "우리 회사 팀장을 소개해요"),
        ("[직업] 자리", "의사", "의사 자리"),
    ],
)
def test_fill_template(template: str, word: str, expected: str) -> None:
    assert fill_template(template, word) == expected


def test_bias_probe_loads_nothing_until_pressed() -> None:
    w = bias_probe(client=ExplodingClient())
    assert w.template.value == "[직업]은/는 보통"
    assert w.word_list() == ["간호사", "엔지니어", "비서", "CEO", "유치원 교사", "소방관"]
    assert w.table.value == ""


def test_bias_probe_shows_next_tokens_side_by_side() -> None:
    client = FakeClient()
    w = bias_probe(client=client)
    w.words.value = "간호사, 엔지니어, 비서, CEO, 간호사"
    w.top_k.value = 4
    w.run_button.click()
    assert [c["prompt"] for c in client.calls] == ["간호사는 보통", "엔지니어는 보통", "비서는 보통", "CEO는 보통"]
    assert all(c["top_k"] == 4 and c["temperature"] == 1.0 for c in client.calls)
    table = html.unescape(w.table.value)
    for prompt in ("간호사는 보통", "엔지니어는 보통", "비서는 보통", "CEO는 보통"):
        assert f">{prompt} …</th>" in table
    assert "40.0%" in table and "여자" in table and "(띄어쓰기)" not in table.split("<tbody>")[0]
    assert table.count("<tr>") == 1 + 4  # header + one row per rank
    assert "↵" in table  # a newline token is made visible
    assert w.message == MSG_BIAS_DONE
    text = shown_text(w)
    assert "함께 이야기해 봐요" in text and "성별" in text


def test_bias_probe_input_checks() -> None:
    client = FakeClient()
    w = bias_probe(client=client)
    w.template.value = "간호사는 보통"
    w.run_button.click()
    assert w.message == MSG_BIAS_NO_SLOT
    w.template.value = "[직업]은/는 보통"
    w.words.value = "간호사"
    w.run_button.click()
    assert w.message == MSG_BIAS_NO_WORDS
    w.words.value = ", ".join(f"직업{i}" for i in range(MAX_WORDS + 3))
    w.run_button.click()
    assert len(client.calls) == MAX_WORDS
    assert "8개까지" in w.message


def test_bias_probe_model_busy_keeps_what_it_has() -> None:
    client = FakeClient(fail_on=3)
    w = bias_probe(client=client)
    w.run_button.click()  # no exception escapes
    assert w.message == "2개 낱말까지만 확인했어요. 지금은 다른 분이 AI를 쓰고 있어요. 잠시 뒤 다시 해 주세요."
    assert "간호사는 보통" in w.table.value and "비서는 보통" not in w.table.value
    assert not w.run_button.disabled
    client.fail_on = None
    w.run_button.click()
    assert w.message == MSG_BIAS_DONE


def test_bias_probe_without_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing():
        raise ImportError("no model_client")

    monkeypatch.setattr(model_client, "get_client", missing)
    w = bias_probe()
    w.run_button.click()
    assert "AI 모델에 연결하지 못했어요" in w.message
    assert "model_client" not in w.status.value


def test_bias_probe_reflection_is_saved() -> None:
    w = responsible.BiasProbe(client=FakeClient(), question_id="m5.bias")
    assert w.note is not None and w.note.description == "내 생각"
    w.save_button.click()
    assert w.message == MSG_BIAS_EMPTY_NOTE
    w.note.value = "간호사에만 '여자'가 먼저 나왔어요."
    w.save_button.click()
    assert w.message == MSG_BIAS_SAVED
    assert load_answer("m5.bias") == "간호사에만 '여자'가 먼저 나왔어요."
    assert responsible.BiasProbe(client=FakeClient(), question_id="m5.bias").note.value.startswith("간호사에만")


def test_every_control_is_labelled() -> None:
    ws = [
        pii_masking_exercise("m5.pii", LETTER),
        hallucination_check(SOURCE, ANSWER, "m5.hallu"),
        responsible.BiasProbe(client=FakeClient(), question_id="m5.bias"),
    ]
    for w in ws:
        for c in all_widgets(w):
            if isinstance(c, (widgets.Button, widgets.Textarea, widgets.Text, widgets.Checkbox, widgets.IntSlider)):
                assert c.description.strip() and c.tooltip, c


# =================================================================================================
# the widgets and a self-check question in a real kernel
# =================================================================================================
NOTEBOOK_CELLS = [
    # Guard: any attempt to reach the real model fails loudly instead of loading it.
    '''
    import sys, types
    _guard = types.ModuleType("donghaeng.toolkit.model_client")
    _guard.calls = 0
    def _no_model():
        _guard.calls += 1
        raise RuntimeError("the test notebook must not load the real model")
    _guard.get_client = _no_model
    sys.modules["donghaeng.toolkit.model_client"] = _guard

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Token:
        id: int
        text: str

    @dataclass(frozen=True)
    class TokenProb:
        id: int
        text: str
        prob: float

    class FakeClient:
        name = "fake"
        context_length = 512
        def tokenize(self, text):
            return [Token(i, c) for i, c in enumerate(text)]
        def complete(self, prompt, *, temperature=0.7, top_p=0.95, max_tokens=64, stop=None):
            yield from ["안녕", "하세요", "!"]
        def next_tokens(self, prompt, *, top_k=10, temperature=1.0):
            return [TokenProb(i, w, 0.5 / (i + 1)) for i, w in enumerate(["여자", "남자", "친절"])][:top_k]
    ''',
    '''
    from donghaeng.toolkit.widgets.playground import prompt_playground
    pg = prompt_playground(client=FakeClient(), question_id="nb.prompt")
    pg.fields_a.task.value = "고객에게 보낼 인사말을 써 주세요."
    pg.fields_a.context.value = "작은 꽃집이에요."
    pg.run_button.click()
    pg.save_button.click()
    print("PLAYGROUND:", pg.fields_a.answer, "|", pg.message)
    pg
    ''',
    '''
    from donghaeng.toolkit.widgets.responsible import (
        bias_probe, hallucination_check, pii_masking_exercise, remaining_pii)
    from donghaeng.common.privacy import mask_pii
    text = "김하늘 010-1234-5678, haneul@example.com"
    pii = pii_masking_exercise("nb.pii", text)
    pii.editor.value = mask_pii(text).replace("김하늘", "[이름]")
    pii.save_button.click()
    hc = hallucination_check("매장은 9시에 열어요.", "매장은 9시에 열어요. 주차는 무료예요.", "nb.hallu")
    hc.checkboxes[0].value = True
    hc.save_button.click()
    bp = bias_probe(client=FakeClient())
    bp.run_button.click()
    print("RESPONSIBLE:", pii.message, "|", hc.message, "|", bp.message)
    display(pii, hc, bp)
    ''',
    '''
    from donghaeng.toolkit.answers import load_answer
    from donghaeng.toolkit.exercises import Question
    tokens = ["꽃", "집"]
    q1 = Question("nb.q1", var="tokens", check=lambda v: (len(v) == 2, "토큰이 2개여야 해요."))
    q2 = Question("nb.q2", answer_id="nb.prompt", check=lambda v: (bool(v.get("context")), "맥락을 써 주세요."))
    q3 = Question("nb.q3", var="not_written_yet", check=bool)
    results = (q1.check(), q2.check(), q3.check())
    q1.solution()
    assert results == (True, True, False), results
    assert not remaining_pii(load_answer("nb.pii"), names=["김하늘"])
    assert _guard.calls == 0
    print("EXERCISES OK")
    ''',
]


def test_widgets_and_questions_in_a_real_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DONGHAENG_SOLUTIONS_DIR", str(tmp_path / "no-solutions-yet"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(src).strip()) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError if any cell fails

    outputs = [o for cell in nb.cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stdout = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "PLAYGROUND: 안녕하세요! | 프롬프트를 답으로 저장했어요." in stdout
    assert "RESPONSIBLE: 저장했어요. 자동 검사로는 남은 개인정보가 보이지 않아요." in stdout
    assert "저장했어요: 근거 있는 문장 1개, 근거 없는 문장 1개." in stdout
    assert MSG_BIAS_DONE in stdout
    assert "EXERCISES OK" in stdout

    widget_views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widget_views) == 4  # the playground and the three responsible-AI widgets
    feedback = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("정답이에요! 🎉" in h for h in feedback)
    assert any("아직 답을 쓰지 않았어요" in h for h in feedback)
    assert any("마감 뒤에 강사님이" in h for h in feedback)

    saved = json.loads((tmp_path / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert set(saved) == {"nb.prompt", "nb.pii", "nb.hallu"}
    assert saved["nb.prompt"]["context"] == "작은 꽃집이에요."
