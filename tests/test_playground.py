"""The prompt playground widget, driven like a learner would (typing, picking, button clicks).

Fast tests use a deterministic stand-in client; the slow tests at the end run the playground against
the lab's real model service: the packaged base Gemma 3 270M in llama-server, and a chat model
(an OpenAI-compatible llama-server with Gemma's chat template) behind the service as an
``engine = "openai"`` entry.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import ipywidgets as widgets
import pytest
from fakeclients import ExplodingClient, ScriptedClient

from donghaeng.toolkit import answers, model_client
from donghaeng.toolkit.answers import load_answer
from donghaeng.toolkit.widgets.playground import (
    HISTORY_LIMIT,
    MSG_AB_TEMPERATURE,
    MSG_ALREADY_SAVED,
    MSG_B_SKIPPED,
    MSG_DONE,
    MSG_DONE_AB,
    MSG_EMPTY_ANSWER,
    MSG_EMPTY_TASK,
    MSG_EMPTY_TASK_B,
    MSG_EMPTY_TEXT,
    MSG_NO_MODEL,
    MSG_SAVE_EMPTY,
    MSG_SAVE_EMPTY_TEXT,
    MSG_SAVE_FAILED,
    MSG_SAVED,
    MSG_UNEXPECTED,
    PromptPlayground,
    build_message,
    build_prompt,
    missing_parts,
    model_kind_box,
)
from donghaeng.toolkit.widgets.playground import prompt_playground as any_playground


def prompt_playground(*args, mode: str = "task", **kwargs) -> PromptPlayground:
    """The playground in the 작업 틀 mode, which most tests below drive."""
    return any_playground(*args, mode=mode, **kwargs)


# --- a deterministic stand-in for donghaeng.toolkit.model_client ---------------------------------------
class ModelError(Exception):
    """Same names as donghaeng.toolkit.model_client's errors; str() is the Korean message."""


class ModelUnavailable(ModelError):
    pass


class ModelBusy(ModelError):
    pass


class PromptTooLong(ModelError):
    pass


def FakeClient(pieces=("안녕", "하세요", "! 반가", "워요."), **kwargs) -> ScriptedClient:
    """The scripted model; a prompt naming "B안" gets B's own answer (for the A/B tests)."""
    return ScriptedClient(pieces, by_prompt={"B안": [" B", "의 ", "답"]}, **kwargs)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # answers file goes here
    return tmp_path


def fill(w: PromptPlayground, task="회의 일정을 알리는 문자를 써 주세요.", context="팀원 다섯 명에게 보내요.",
         references="") -> None:
    w.fields_a.task.value = task
    w.fields_a.context.value = context
    w.fields_a.references.value = references


def all_widgets(w: widgets.Widget) -> Iterator[widgets.Widget]:
    yield w
    for child in getattr(w, "children", ()):
        yield from all_widgets(child)


# --- building the prompt ------------------------------------------------------------------------
def test_build_prompt_is_a_plain_completion_prompt() -> None:
    assert build_prompt("요약해 주세요.", "회의록이에요.", "예) 세 줄로") == (
        "작업: 요약해 주세요.\n맥락: 회의록이에요.\n참고: 예) 세 줄로\n답:"
    )
    assert build_prompt("  요약해 주세요. ", "", "  ") == "작업: 요약해 주세요.\n답:"
    assert build_prompt("", "", "") == ""


def test_preview_follows_typing_without_touching_the_model() -> None:
    w = prompt_playground(client=ExplodingClient())
    assert "아직 비어 있어요" in w.fields_a.preview.value
    fill(w, references="예) \"내일 10시에 만나요.\"")
    preview = w.fields_a.preview.value
    assert "작업: 회의 일정을 알리는 문자를 써 주세요." in preview
    assert "맥락: 팀원 다섯 명에게 보내요." in preview
    assert "참고: 예) &quot;내일 10시에 만나요.&quot;" in preview
    assert "답:" in preview


def test_the_default_client_is_used_only_on_run(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[ScriptedClient] = []

    def factory() -> ScriptedClient:
        if not made:
            made.append(FakeClient())
        return made[0]  # the lab's client is one per kernel

    monkeypatch.setattr(model_client, "get_client", factory)
    w = prompt_playground()
    fill(w)
    w.temperature.value = 0.3
    assert made[0].calls == []  # asked what kind of model it is, nothing generated
    w.run_button.click()
    assert len(made) == 1 and len(made[0].calls) == 1


# --- running ------------------------------------------------------------------------------------
def test_answer_streams_in_piece_by_piece() -> None:
    shown_while_generating: list[str] = []
    client = FakeClient(on_piece=lambda i: shown_while_generating.append(w.fields_a.answer))
    w = prompt_playground(client=client)
    fill(w)
    updates: list[str] = []
    w.fields_a.output.observe(lambda change: updates.append(change["new"]), names="value")

    assert w.run() is True

    # Before each new piece is generated, the pieces so far are already on screen.
    assert shown_while_generating == ["", "안녕", "안녕하세요", "안녕하세요! 반가"]
    partials = [u for u in updates if "안녕" in u]
    assert len(partials) >= 4
    assert "안녕하세요" not in partials[0] and "안녕하세요! 반가워요." in partials[-1]
    assert w.fields_a.answer == "안녕하세요! 반가워요."
    assert w.message == MSG_DONE
    assert not w.run_button.disabled


def test_run_sends_the_prompt_and_the_slider_settings() -> None:
    client = FakeClient()
    w = prompt_playground(client=client)
    fill(w)
    w.temperature.value = 1.2
    w.top_p.value = 0.5
    w.max_tokens.value = 128
    w.run_button.click()
    (call,) = client.calls
    assert call["prompt"] == "작업: 회의 일정을 알리는 문자를 써 주세요.\n맥락: 팀원 다섯 명에게 보내요.\n답:"
    assert call["temperature"] == pytest.approx(1.2)
    assert call["top_p"] == pytest.approx(0.5)
    assert call["max_tokens"] == 128
    assert "\n작업:" in call["stop"]


def test_buttons_are_disabled_while_the_answer_streams() -> None:
    seen: list[bool] = []
    client = FakeClient(on_piece=lambda i: seen.append(w.run_button.disabled))
    w = prompt_playground(client=client)
    fill(w)
    w.run_button.click()
    assert seen and all(seen)
    assert not w.run_button.disabled


def test_a_second_click_while_running_is_ignored_politely() -> None:
    def click_again(i: int) -> None:
        if i == 1:
            w.run()  # what a queued second click would do

    client = FakeClient(on_piece=click_again)
    w = prompt_playground(client=client)
    fill(w)
    w.run_button.click()
    assert len(client.calls) == 1
    assert w.fields_a.answer == "안녕하세요! 반가워요."


def test_history_keeps_attempts_newest_first() -> None:
    client = FakeClient()
    w = prompt_playground(client=client)
    assert w.history_select.options == ()
    assert "아직 실행한 시도가 없어요" in w.history_detail.value
    for n in range(1, 4):
        fill(w, task=f"{n}번째 작업이에요.")
        w.temperature.value = n / 10
        w.run_button.click()
    assert [a.task for a in w.history] == ["3번째 작업이에요.", "2번째 작업이에요.", "1번째 작업이에요."]
    assert [a.answer for a in w.history] == ["안녕하세요! 반가워요."] * 3
    labels = [label for label, _no in w.history_select.options]
    assert labels[0].startswith("3번") and "온도 0.3" in labels[0]
    assert w.history_select.value == 3  # the newest is selected and shown
    assert "3번째 작업이에요." in w.history_detail.value and "반가워요" in w.history_detail.value


def test_history_keeps_the_last_twenty() -> None:
    w = prompt_playground(client=FakeClient(pieces=["네"]))
    for n in range(HISTORY_LIMIT + 5):
        fill(w, task=f"작업 {n}")
        w.run_button.click()
    assert len(w.history) == HISTORY_LIMIT == 20
    assert w.history[0].task == "작업 24" and w.history[-1].task == "작업 5"
    assert len(w.history_select.options) == 20


def test_reload_an_earlier_attempt() -> None:
    w = prompt_playground(client=FakeClient())
    fill(w, task="처음 작업", context="처음 맥락", references="처음 참고")
    w.temperature.value = 0.2
    w.top_p.value = 0.6
    w.max_tokens.value = 32
    w.run_button.click()
    fill(w, task="두 번째 작업", context="", references="")
    w.temperature.value = 1.4
    w.max_tokens.value = 200
    w.run_button.click()

    w.history_select.value = None
    w.reload_button.click()
    assert w.message == "다시 불러올 시도를 먼저 골라 주세요."

    w.history_select.value = 1
    w.reload_button.click()
    assert (w.fields_a.task.value, w.fields_a.context.value, w.fields_a.references.value) == (
        "처음 작업", "처음 맥락", "처음 참고")
    assert w.temperature.value == pytest.approx(0.2)
    assert w.top_p.value == pytest.approx(0.6)
    assert w.max_tokens.value == 32
    assert "1번 시도" in w.message


def test_ab_comparison_shows_two_answers_side_by_side_at_temperature_zero() -> None:
    client = FakeClient()
    w = prompt_playground(client=client)
    fill(w)
    w.temperature.value = 1.2
    assert w.fields_b.box.layout.display == "none"
    w.ab_toggle.value = True
    assert w.fields_b.box.layout.display != "none"
    assert w.fields_b.task.value == w.fields_a.task.value  # B starts as a copy of A
    assert w.temperature.disabled and MSG_AB_TEMPERATURE in html.unescape(w.ab_note.value)
    w.fields_b.context.value = "B안: 사장님께 보내요."
    w.run_button.click()

    assert [c["prompt"] for c in client.calls] == [w.fields_a.prompt, w.fields_b.prompt]  # A, then B
    assert [c["temperature"] for c in client.calls] == [0.0, 0.0]  # the prompts differ, not the dice
    assert "온도 0 " in w.history_select.options[0][0]
    assert w.fields_a.answer == "안녕하세요! 반가워요."
    assert w.fields_b.answer == " B의 답"
    assert "반가워요" in w.fields_a.output.value and "B의 답" in w.fields_b.output.value
    assert w.message == MSG_DONE_AB
    assert [a.label for a in w.history] == ["B", "A"]
    w.ab_toggle.value = False  # back to one prompt: the learner's temperature again
    assert not w.temperature.disabled and w.ab_note.value == ""
    w.run_button.click()
    assert client.calls[-1]["temperature"] == pytest.approx(1.2)
    # Both columns sit in one row.
    row = next(c for c in w.children if isinstance(c, widgets.HBox) and w.fields_a.box in c.children)
    assert w.fields_b.box in row.children


def test_ab_needs_a_task_for_b_too() -> None:
    client = FakeClient()
    w = prompt_playground(client=client)
    fill(w)
    w.ab_toggle.value = True
    w.fields_b.task.value = "  "
    w.run_button.click()
    assert w.message == MSG_EMPTY_TASK_B
    assert client.calls == []
    w.ab_toggle.value = False  # switching A/B off runs A alone
    w.run_button.click()
    assert len(client.calls) == 1


# --- errors end as Korean messages; the widget stays usable -------------------------------------
def test_empty_prompt() -> None:
    w = prompt_playground(client=ExplodingClient())
    w.run_button.click()
    assert w.message == MSG_EMPTY_TASK
    fill(w, task="   ", context="맥락만 있어요")
    w.run_button.click()
    assert w.message == MSG_EMPTY_TASK
    assert MSG_EMPTY_TASK in html.unescape(w.status.value)  # shown, not only stored


def test_prompt_longer_than_the_context_window() -> None:
    client = FakeClient(context_length=100)
    w = prompt_playground(client=client)
    fill(w, references="아주 긴 참고 자료. " * 20)
    w.max_tokens.value = 64
    assert w.run() is False
    assert client.calls == []
    assert "프롬프트가 너무 길어요" in w.message and "100토큰" in w.message and "참고 자료를 줄이" in w.message
    assert "너무 길어요" in w.fields_a.output.value
    fill(w, task="짧게", context="", references="")
    w.max_tokens.value = 16
    assert w.run() is True  # still usable


def test_model_service_down() -> None:
    client = FakeClient(fail=ModelUnavailable("AI 모델 서비스가 꺼져 있어요. 강사님께 알려 주세요."))
    w = prompt_playground(client=client)
    fill(w)
    w.run_button.click()  # no exception escapes
    assert w.message == "AI 모델 서비스가 꺼져 있어요. 강사님께 알려 주세요."
    assert 'role="alert"' in w.status.value and "Traceback" not in w.status.value
    assert not w.run_button.disabled
    assert w.history[0].message == w.message  # the failed attempt can be reloaded and retried
    client.fail = None
    w.run_button.click()
    assert w.message == MSG_DONE


def test_model_busy_midway_keeps_the_partial_answer() -> None:
    client = FakeClient(fail=ModelBusy("다른 분이 쓰는 중이에요. 잠시 뒤 다시 해 주세요."), fail_after=2)
    w = prompt_playground(client=client)
    fill(w)
    assert w.run() is False
    assert w.fields_a.answer == "안녕하세요"
    assert "답을 받다가 멈췄어요: 다른 분이 쓰는 중이에요." in w.fields_a.output.value
    assert w.message == "다른 분이 쓰는 중이에요. 잠시 뒤 다시 해 주세요."


def test_tokenizer_failure() -> None:
    client = FakeClient(tokenize_fail=ModelUnavailable("모델을 불러오지 못했어요."))
    w = prompt_playground(client=client)
    fill(w)
    w.run_button.click()
    assert w.message == "모델을 불러오지 못했어요."
    assert client.calls == []


def test_model_client_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing():
        raise ImportError("No module named 'donghaeng.toolkit.model_client'")

    monkeypatch.setattr(model_client, "get_client", missing)
    w = prompt_playground()
    fill(w)
    w.run_button.click()
    assert w.message == MSG_NO_MODEL
    assert "No module" not in w.status.value


def test_unexpected_error_is_not_shown_raw() -> None:
    client = FakeClient(fail=RuntimeError("CUDA out of memory: secret internals"), fail_after=0)
    w = prompt_playground(client=client)
    fill(w)
    w.run_button.click()
    assert w.message == MSG_UNEXPECTED
    assert "CUDA" not in w.status.value and "CUDA" not in w.fields_a.output.value


def test_empty_answer() -> None:
    w = prompt_playground(client=FakeClient(pieces=[]))
    fill(w)
    w.run_button.click()
    assert w.message == MSG_EMPTY_ANSWER


def test_ab_stops_after_service_failure_but_not_after_a_too_long_prompt() -> None:
    client = FakeClient(fail=ModelUnavailable("AI 모델 서비스가 꺼져 있어요."))
    w = prompt_playground(client=client)
    fill(w)
    w.ab_toggle.value = True
    w.fields_b.context.value = "B안"
    w.run_button.click()
    assert len(client.calls) == 1
    assert MSG_B_SKIPPED in w.fields_b.output.value
    assert w.message.startswith("프롬프트 A: ")

    client.fail = PromptTooLong("프롬프트가 너무 길어요.")
    client.calls.clear()
    w.run_button.click()
    assert len(client.calls) == 2  # B still ran
    assert w.fields_b.answer == ""  # the fake fails every prompt at piece 0


# --- saving the final prompt --------------------------------------------------------------------
def test_save_prompt_as_answer(in_tmp: Path) -> None:
    w = prompt_playground(client=FakeClient(), question_id="m3.prompt")
    assert w.save_button is not None and w.save_button.description == "이 프롬프트를 답으로 저장"
    w.save_button.click()
    assert w.message == MSG_SAVE_EMPTY
    assert load_answer("m3.prompt") is None

    fill(w, references="예) 내일 10시에 만나요.")
    w.temperature.value = 0.4
    w.run_button.click()
    w.save_button.click()
    assert w.message == MSG_SAVED
    saved = load_answer("m3.prompt")
    assert saved["prompt"] == w.prompt
    assert saved["task"] == "회의 일정을 알리는 문자를 써 주세요."
    assert saved["temperature"] == pytest.approx(0.4)
    assert saved["answer"] == "안녕하세요! 반가워요."
    assert missing_parts(saved) == []
    assert (in_tmp / answers.ANSWERS_FILE).exists()

    # Running the cell again brings the saved prompt back.
    again = prompt_playground(client=FakeClient(), question_id="m3.prompt")
    assert again.fields_a.task.value == "회의 일정을 알리는 문자를 써 주세요."
    assert again.temperature.value == pytest.approx(0.4)
    assert again.message == MSG_ALREADY_SAVED
    assert "저장된 프롬프트" in again._repr_mimebundle_()["text/plain"]


def test_missing_parts_for_autograde() -> None:
    assert missing_parts(None) == ["작업", "맥락", "참고"]
    assert missing_parts({"task": "요약", "context": " ", "references": "예시"}) == ["맥락"]


def test_save_failure_is_friendly(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a, **_k):
        raise answers.AnswersFileError("disk full")

    w = prompt_playground(client=FakeClient(), question_id="m3.prompt")
    fill(w)
    monkeypatch.setattr(answers, "save_answer", broken)
    w.save_button.click()
    assert w.message == MSG_SAVE_FAILED
    assert "disk full" not in w.status.value


def test_no_save_button_without_a_question() -> None:
    w = prompt_playground(client=FakeClient())
    assert w.save_button is None
    assert not any(isinstance(c, widgets.Button) and "저장" in c.description for c in all_widgets(w))


# --- accessibility ------------------------------------------------------------------------------
def test_every_control_is_labelled() -> None:
    w = prompt_playground(client=FakeClient(), question_id="m3.prompt")
    controls = [c for c in all_widgets(w) if isinstance(c, (widgets.Button, widgets.Textarea, widgets.Checkbox,
                                                             widgets.BoundedFloatText, widgets.BoundedIntText,
                                                             widgets.Select, widgets.RadioButtons,
                                                             widgets.Dropdown))]
    assert len(controls) >= 14
    for c in controls:
        assert c.description.strip(), c
        assert c.tooltip, c
    descriptions = {c.description for c in controls}
    assert {"작업", "맥락", "참고 자료", "온도", "후보 범위", "최대 토큰", "실행하기", "이 시도 다시 불러오기",
            "이 프롬프트를 답으로 저장", "지난 시도", "시작 글", "보내는 방식"} <= descriptions
    text = " ".join(c.value for c in all_widgets(w) if isinstance(c, widgets.HTML))
    assert "평가" in text and "반복" in text
    assert w.temperature.min == 0 and w.temperature.max == 1.5
    assert w.top_p.min == pytest.approx(0.1) and w.top_p.max == 1.0
    assert w.max_tokens.min == 16 and w.max_tokens.max == 256


def test_real_model_client_errors_are_recognised() -> None:
    real = pytest.importorskip("donghaeng.toolkit.model_client")  # importing it loads no model
    client = FakeClient(fail=real.ModelBusy())
    w = prompt_playground(client=client)
    fill(w)
    w.run_button.click()
    assert w.message == str(real.ModelBusy()) and w.message
    client.fail = real.PromptTooLong(5000, 4096)
    w.run_button.click()
    assert w.message == str(real.PromptTooLong(5000, 4096))
    assert "프롬프트가 너무 길어요" in w.message


def test_status_while_running_mentions_the_first_slow_start() -> None:
    from donghaeng.toolkit.widgets.playground import MSG_FIRST_RUN, MSG_RUNNING

    seen: list[str] = []
    w = prompt_playground(client=FakeClient(on_piece=lambda i: seen.append(w.message)))
    fill(w)
    w.run_button.click()
    w.run_button.click()
    assert seen[0] == MSG_FIRST_RUN and seen[-1] == MSG_RUNNING
    assert w.message == MSG_DONE


def test_playground_requests_are_accepted_by_the_model_service():
    """The playground's stop words and settings stay within what the service (and OpenAI) accept."""
    from donghaeng.services.model.validate import validate
    from donghaeng.toolkit.widgets.playground import STOP

    request = validate({"model": "gemma3-270m", "prompt": "작업: 인사\n답:", "stop": STOP, "temperature": 1.5,
                        "top_p": 0.1, "max_tokens": 256, "stream": True}, "completions",
                       models=["gemma3-270m"], default_model="gemma3-270m", max_tokens_limit=2048,
                       default_max_tokens=256)
    assert request.max_tokens == 256


# --- the three ways of sending a prompt ---------------------------------------------------------
BEGINNINGS = ["대한민국의 수도는", "영어: Thank you\n한국어: 고맙습니다\n영어: Good morning\n한국어:"]


def test_a_base_model_continues_the_text_as_it_is_by_default() -> None:
    client = FakeClient()
    w = any_playground(client=client)
    assert w.mode == "raw" and [label for label, _m in w.mode_select.options] == ["그대로 이어 쓰기", "작업 틀에 넣기"]
    assert w.fields_a.raw_fields.layout.display is None and w.fields_a.framework_fields.layout.display == "none"
    w.run_button.click()
    assert w.message == MSG_EMPTY_TEXT and client.calls == []
    w.fields_a.text.value = "오늘 점심 메뉴는 "
    assert "오늘 점심 메뉴는" in w.fields_a.preview.value and "답:" not in w.fields_a.preview.value
    w.run_button.click()
    (call,) = client.calls
    assert call["prompt"] == "오늘 점심 메뉴는 "  # as written: no 작업/답 frame, trailing space kept
    assert call["stop"] is None
    assert w.message == MSG_DONE and w.history[0].mode == "raw"
    assert "그대로 이어 쓰기" in w.history_select.options[0][0]


def test_prefilled_beginnings_are_picked_from_a_list() -> None:
    client = FakeClient()
    w = any_playground(client=client, beginnings=BEGINNINGS)
    assert w.fields_a.text.value == BEGINNINGS[0]  # ready to run without typing
    assert [value for _label, value in w.fields_a.pick.options] == BEGINNINGS
    w.fields_a.pick.value = BEGINNINGS[1]
    assert w.fields_a.text.value == BEGINNINGS[1]
    w.run_button.click()
    assert client.calls[0]["prompt"] == BEGINNINGS[1]
    given = any_playground(client=client, beginnings=BEGINNINGS, text="내가 쓴 첫머리")
    assert given.fields_a.text.value == "내가 쓴 첫머리"


def test_switching_modes_keeps_what_was_written() -> None:
    client = FakeClient()
    w = any_playground(client=client)
    w.fields_a.text.value = "회의 자료는 메일로"
    w.mode_select.value = "task"
    assert w.fields_a.raw_fields.layout.display == "none" and w.fields_a.framework_fields.layout.display is None
    assert "'작업: … 답:' 틀" in html.unescape(w.mode_help.value)
    fill(w)
    w.run_button.click()
    assert client.calls[-1]["prompt"].endswith("\n답:") and client.calls[-1]["stop"]
    w.mode_select.value = "raw"
    assert w.fields_a.text.value == "회의 자료는 메일로"
    w.history_select.value = 1
    w.reload_button.click()  # the attempt comes back in its own mode
    assert w.mode == "task" and w.fields_a.task.value == "회의 일정을 알리는 문자를 써 주세요."


def test_chat_is_offered_only_for_a_chat_model() -> None:
    base = any_playground(client=FakeClient(), mode="chat")  # a notebook asking for chat on a base model
    assert base.mode == "raw" and "chat" not in base.modes
    chat_client = FakeClient(kind="chat")
    w = any_playground(client=chat_client)
    assert w.mode == "chat" and [label for label, _m in w.mode_select.options] == [
        "그대로 이어 쓰기", "작업 틀에 넣기", "대화하기"]
    fill(w, references="예) 내일 10시에 만나요.")
    assert "답:" not in w.fields_a.preview.value
    w.run_button.click()
    (call,) = chat_client.calls
    assert call["messages"] == [{"role": "user", "content": build_message(
        "회의 일정을 알리는 문자를 써 주세요.", "팀원 다섯 명에게 보내요.", "예) 내일 10시에 만나요.")}]
    assert call["messages"][0]["content"] == (
        "작업: 회의 일정을 알리는 문자를 써 주세요.\n맥락: 팀원 다섯 명에게 보내요.\n참고: 예) 내일 10시에 만나요.")
    assert w.fields_a.answer == "안녕하세요! 반가워요." and w.message == MSG_DONE


def test_a_graded_playground_starts_with_the_framework_and_saves_its_mode(in_tmp: Path) -> None:
    w = any_playground(client=FakeClient(), question_id="m2.try")
    assert w.mode == "task"  # rubrics grade the 작업·맥락·참고 parts
    w.mode_select.value = "raw"
    w.save_button.click()
    assert w.message == MSG_SAVE_EMPTY_TEXT
    w.fields_a.text.value = "안녕하세요, 고객님. 이번 주"
    w.save_button.click()
    saved = load_answer("m2.try")
    assert (saved["mode"], saved["text"], saved["prompt"]) == ("raw", "안녕하세요, 고객님. 이번 주", "안녕하세요, 고객님. 이번 주")
    again = any_playground(client=FakeClient(), question_id="m2.try")
    assert again.mode == "raw" and again.fields_a.text.value == "안녕하세요, 고객님. 이번 주"
    chat = any_playground(client=FakeClient(kind="chat"), question_id="m2.chat")
    assert chat.mode == "chat"


def test_a_model_that_cannot_count_tokens_still_runs() -> None:
    real = pytest.importorskip("donghaeng.toolkit.model_client")
    client = FakeClient(kind="chat", tokenize_fail=real.TokenizeUnsupported())
    w = any_playground(client=client)
    fill(w)
    assert w.run() is True and w.fields_a.answer == "안녕하세요! 반가워요."


def test_the_model_kind_box_follows_the_configured_model() -> None:
    base = model_kind_box(FakeClient())
    chat = model_kind_box(FakeClient(kind="chat"))
    for box in (base, chat):
        bundle = box._repr_mimebundle_()
        assert "이 실습실의 모델은 어떤 모델일까요?" in bundle["text/html"] and 'role="note"' in bundle["text/html"]
        assert "이 실습실의 모델은 어떤 모델일까요?" in bundle["text/plain"]
    assert "작은 기본 모델" in base.html() and "대한민국의 수도는" in base.html() and "그대로 이어 쓰기" in base.html()
    assert "대화형 모델</b>을 연결해" in chat.html() and "대화하기" in chat.html()
    assert "작은 기본 모델" in base.text() and "대화형 모델" in chat.text()
    assert model_kind_box(ExplodingClient()).kind == "base"  # an unknown model is treated as a base model


# --- against the real model service: the packaged base model, and a chat model -------------------
@pytest.fixture(scope="module")
def model_service(tmp_path_factory):
    """The lab's model service in this process: the packaged GGUF in llama-server (base), and a second
    llama-server with Gemma's chat template as an external OpenAI-compatible chat model."""
    import asyncio
    import os
    import subprocess
    import threading
    import time

    import httpx
    from test_model_service import FakeHubAuth, _free_port
    from tornado.httpserver import HTTPServer

    from donghaeng.services.model.app import ModelService, make_app
    from donghaeng.services.model.build import is_usable
    from donghaeng.services.model.config import ServiceConfig
    from donghaeng.common.settings import PACKAGED_MODEL, ModelEntry
    from donghaeng.common.settings import ModelService as ServiceSettings

    binary = ServiceSettings().engine_binary
    if not (PACKAGED_MODEL.is_file() and is_usable(binary)):
        pytest.skip("needs the packaged model and llama-server (./lab up installs them)")
    root = tmp_path_factory.mktemp("model-service")
    chat_port, port = _free_port(), _free_port()
    chat_log = (root / "chat-engine.log").open("wb")
    chat_engine = subprocess.Popen(
        [str(binary), "--model", str(PACKAGED_MODEL), "--host", "127.0.0.1", "--port", str(chat_port),
         "--ctx-size", "2048", "--parallel", "1", "--threads", "2", "--no-webui", "--chat-template", "gemma"],
        stdout=chat_log, stderr=subprocess.STDOUT, start_new_session=True)
    cfg = ServiceConfig(
        service=ServiceSettings(tokens_per_minute=1_000_000),
        models=[ModelEntry(name="gemma3-270m", path=PACKAGED_MODEL, context_length=1024, parallel=2, threads=2),
                ModelEntry(name="gemma3-270m-chat", engine="openai", url=f"http://127.0.0.1:{chat_port}/v1",
                           context_length=2048, completion_only=False, parallel=1)],
        state_dir=root / "state", port=port)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        svc = ModelService(cfg, hub_auth=FakeHubAuth())
        server = HTTPServer(make_app(svc))
        server.listen(port, "127.0.0.1")
        await svc.start()
        return svc, server

    svc, server = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    base = f"http://127.0.0.1:{port}/services/model/v1"
    try:
        deadline = time.monotonic() + 300
        while httpx.get(f"{base[:-3]}/health", timeout=5, trust_env=False).status_code != 200:
            assert time.monotonic() < deadline, "model service not ready"
            assert chat_engine.poll() is None, (root / "chat-engine.log").read_text()[-2000:]
            time.sleep(1)
        yield base
    finally:
        async def stop():
            server.stop()
            await svc.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        os.killpg(chat_engine.pid, 15)
        chat_engine.wait(30)
        chat_log.close()


def service_client(base: str, model: str):
    from donghaeng.toolkit.model_client import ServiceClient

    return ServiceClient(base, model=model, api_token="learner-token")


@pytest.mark.slow
def test_the_base_model_path_on_the_real_service(model_service: str) -> None:
    from donghaeng.toolkit.model_client import MSG_NO_CHAT, ModelError

    client = service_client(model_service, "gemma3-270m")
    assert client.kind == "base"
    w = any_playground(client=client, beginnings=["대한민국의 수도는"])
    assert w.mode == "raw" and "chat" not in w.modes
    w.temperature.value = 0.0
    w.max_tokens.value = 24
    assert w.run() is True, w.message
    # the text went as it is: the same greedy continuation as sending it straight to the model
    direct = "".join(client.complete("대한민국의 수도는", temperature=0, max_tokens=24))
    assert w.fields_a.answer == direct and direct.strip()
    framed = "".join(client.complete(build_prompt("대한민국의 수도는"), temperature=0, max_tokens=24, stop=["\n작업:"]))
    assert framed != direct  # the 작업 틀 is a different prompt to a base model

    w.ab_toggle.value = True  # two equal prompts at a high temperature field: A/B runs greedy
    w.temperature.value = 1.5
    assert w.run() is True, w.message
    assert w.fields_a.answer == w.fields_b.answer == direct

    with pytest.raises(ModelError) as exc:  # the service refuses chat for a base model, in Korean
        "".join(client.chat([{"role": "user", "content": "안녕하세요"}]))
    assert str(exc.value) == MSG_NO_CHAT
    assert "작은 기본 모델" in model_kind_box(client).html()


@pytest.mark.slow
def test_the_chat_model_path_on_the_real_service(model_service: str) -> None:
    client = service_client(model_service, "gemma3-270m-chat")
    assert client.kind == "chat"
    pieces = list(client.chat([{"role": "user", "content": "인사말을 한 문장으로 써 주세요."}], temperature=0,
                              max_tokens=24))
    assert len(pieces) > 1 and "".join(pieces).strip()  # streamed piece by piece
    w = any_playground(client=client)
    assert w.mode == "chat"
    fill(w)
    w.max_tokens.value = 32
    assert w.run() is True, w.message
    assert w.fields_a.answer.strip() and w.history[0].mode == "chat"
    assert "대화형 모델</b>을 연결해" in model_kind_box(client).html()
