"""The prompt playground widget, driven like a learner would (typing, sliders, button clicks)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path

import ipywidgets as widgets
import pytest
from fakeclients import ExplodingClient

from donghaeng import answers, model_client
from donghaeng.answers import load_answer
from donghaeng.model_client import Token
from donghaeng.widgets.playground import (
    HISTORY_LIMIT,
    MSG_ALREADY_SAVED,
    MSG_B_SKIPPED,
    MSG_DONE,
    MSG_DONE_AB,
    MSG_EMPTY_ANSWER,
    MSG_EMPTY_TASK,
    MSG_EMPTY_TASK_B,
    MSG_NO_MODEL,
    MSG_SAVE_EMPTY,
    MSG_SAVE_FAILED,
    MSG_SAVED,
    MSG_UNEXPECTED,
    PromptPlayground,
    build_prompt,
    missing_parts,
    prompt_playground,
)


# --- a deterministic stand-in for donghaeng.model_client ---------------------------------------
class ModelError(Exception):
    """Same names as donghaeng.model_client's errors; str() is the Korean message."""


class ModelUnavailable(ModelError):
    pass


class ModelBusy(ModelError):
    pass


class PromptTooLong(ModelError):
    pass


class FakeClient:
    name = "fake-gemma"

    def __init__(self, pieces=("안녕", "하세요", "! 반가", "워요."), *, context_length: int = 400,
                 fail: Exception | None = None, fail_after: int = 0, tokenize_fail: Exception | None = None,
                 on_piece: Callable[[int], None] | None = None) -> None:
        self.pieces = list(pieces)
        self.context_length = context_length
        self.fail = fail
        self.fail_after = fail_after
        self.tokenize_fail = tokenize_fail
        self.on_piece = on_piece
        self.calls: list[dict] = []

    def tokenize(self, text: str) -> list[Token]:
        if self.tokenize_fail:
            raise self.tokenize_fail
        return [Token(i, ch) for i, ch in enumerate(text)]  # one token per character

    def complete(self, prompt, *, temperature=0.7, top_p=0.95, max_tokens=64, stop=None) -> Iterator[str]:
        self.calls.append({"prompt": prompt, "temperature": temperature, "top_p": top_p,
                           "max_tokens": max_tokens, "stop": stop})
        pieces = self.pieces
        if "B안" in prompt:
            pieces = [" B", "의 ", "답"]
        for i, piece in enumerate(pieces):
            if self.fail is not None and i == self.fail_after:
                raise self.fail
            if self.on_piece:
                self.on_piece(i)
            yield piece

    def next_tokens(self, prompt, *, top_k=10, temperature=1.0):
        raise AssertionError("the playground never asks for next tokens")


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


def test_default_client_is_only_created_on_run(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeClient] = []

    def factory() -> FakeClient:
        made.append(FakeClient())
        return made[-1]

    monkeypatch.setattr(model_client, "get_client", factory)
    w = prompt_playground()
    fill(w)
    w.temperature.value = 0.3
    assert made == []
    w.run_button.click()
    assert len(made) == 1 and len(made[0].calls) == 1
    w.run_button.click()
    assert len(made) == 1  # created once, then reused


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


def test_ab_comparison_shows_two_answers_side_by_side() -> None:
    client = FakeClient()
    w = prompt_playground(client=client)
    fill(w)
    assert w.fields_b.box.layout.display == "none"
    w.ab_toggle.value = True
    assert w.fields_b.box.layout.display != "none"
    assert w.fields_b.task.value == w.fields_a.task.value  # B starts as a copy of A
    w.fields_b.context.value = "B안: 사장님께 보내요."
    w.run_button.click()

    assert [c["prompt"] for c in client.calls] == [w.fields_a.prompt, w.fields_b.prompt]  # A, then B
    assert w.fields_a.answer == "안녕하세요! 반가워요."
    assert w.fields_b.answer == " B의 답"
    assert "반가워요" in w.fields_a.output.value and "B의 답" in w.fields_b.output.value
    assert w.message == MSG_DONE_AB
    assert [a.label for a in w.history] == ["B", "A"]
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
        raise ImportError("No module named 'donghaeng.model_client'")

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
                                                             widgets.Select))]
    assert len(controls) >= 14
    for c in controls:
        assert c.description.strip(), c
        assert c.tooltip, c
    descriptions = {c.description for c in controls}
    assert {"작업", "맥락", "참고 자료", "온도", "후보 범위", "최대 토큰", "실행하기", "이 시도 다시 불러오기",
            "이 프롬프트를 답으로 저장", "지난 시도"} <= descriptions
    text = " ".join(c.value for c in all_widgets(w) if isinstance(c, widgets.HTML))
    assert "평가" in text and "반복" in text
    assert w.temperature.min == 0 and w.temperature.max == 1.5
    assert w.top_p.min == pytest.approx(0.1) and w.top_p.max == 1.0
    assert w.max_tokens.min == 16 and w.max_tokens.max == 256


def test_real_model_client_errors_are_recognised() -> None:
    real = pytest.importorskip("donghaeng.model_client")  # importing it loads no model
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
    from donghaeng.widgets.playground import MSG_FIRST_RUN, MSG_RUNNING

    seen: list[str] = []
    w = prompt_playground(client=FakeClient(on_piece=lambda i: seen.append(w.message)))
    fill(w)
    w.run_button.click()
    w.run_button.click()
    assert seen[0] == MSG_FIRST_RUN and seen[-1] == MSG_RUNNING
    assert w.message == MSG_DONE


def test_playground_requests_are_accepted_by_the_model_service():
    """The playground's stop words and settings stay within what the service (and OpenAI) accept."""
    from donghaeng.modelservice.validate import validate
    from donghaeng.widgets.playground import STOP

    request = validate({"model": "gemma3-270m", "prompt": "작업: 인사\n답:", "stop": STOP, "temperature": 1.5,
                        "top_p": 0.1, "max_tokens": 256, "stream": True}, "completions",
                       models=["gemma3-270m"], default_model="gemma3-270m", max_tokens_limit=2048,
                       default_max_tokens=256)
    assert request.max_tokens == 256
