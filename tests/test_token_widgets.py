"""The tokenizer explorer and next-token viewer, driven like a learner does: typing and clicking.

Most tests use the real packaged model (one load per session, shared with test_model_client.py);
a few use a small stand-in client for cases the real model rarely produces (an end marker on top).
"""

from __future__ import annotations

import base64
import re
import socket

import pytest
from fakeclients import ScriptedClient

from donghaeng.toolkit.model_client import InKernelClient, ServiceClient, TokenProb
from donghaeng.toolkit.widgets.next_token import NextTokenViewer, next_token_viewer
from donghaeng.toolkit.widgets.tokens import TokenizerExplorer, tokenizer_explorer


def chip_count(html: str) -> int:
    return html.count('class="dh-token"')


def chart_png(viewer: NextTokenViewer) -> bytes:
    match = re.search(r'src="data:image/png;base64,([^"]+)"', viewer.chart.value)
    assert match, "no chart drawn"
    return base64.b64decode(match.group(1))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------
# Nothing loads until the learner acts; every control is labelled
# ------------------------------------------------------------------------------------------


def test_widgets_load_nothing_and_label_every_control():
    client = InKernelClient()
    explorer = tokenizer_explorer(client)
    viewer = next_token_viewer(client)
    assert isinstance(explorer, TokenizerExplorer) and isinstance(viewer, NextTokenViewer)
    assert not client.tokenizer_loaded and not client.loaded
    assert explorer.text.placeholder and "문장" in explorer.text.placeholder
    assert viewer.prompt.value == "회의 자료는 메일로"
    controls = [explorer.text, explorer.compare_toggle, explorer.ko_text, explorer.en_text, viewer.prompt,
                viewer.top_k, viewer.temperature, viewer.show_button, viewer.greedy_button, viewer.sample_button]
    assert all(c.description for c in controls)
    assert (viewer.top_k.min, viewer.top_k.max) == (3, 20)
    assert (viewer.temperature.min, viewer.temperature.max, viewer.temperature.step) == (0.0, 2.0, 0.1)
    assert [b.description for b in (viewer.show_button, viewer.greedy_button, viewer.sample_button)] == [
        "다음 토큰 보기", "가장 높은 것 붙이기", "뽑아서 붙이기"]
    # Moving a slider before the first press does not load the model either.
    viewer.temperature.value = 0.5
    assert not client.loaded


# ------------------------------------------------------------------------------------------
# Tokenizer explorer
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_explorer_shows_one_chip_per_token(kernel_client):
    explorer = tokenizer_explorer(kernel_client)
    text = "회의 자료는 메일로\n보내 주세요."
    explorer.text.value = text
    tokens = kernel_client.tokenize(text)
    assert chip_count(explorer.chips.value) == len(tokens)
    assert f"토큰 {len(tokens)}개 · 글자 {len(text)}자" in explorer.count.value
    assert f'title="토큰 번호 {tokens[0].id}"' in explorer.chips.value
    assert "␣자료" in explorer.chips.value and "↵" in explorer.chips.value  # spaces, newline visible
    explorer.text.value = ""
    assert chip_count(explorer.chips.value) == 0 and explorer.count.value == ""


@pytest.mark.slow
def test_explorer_survives_emoji_and_byte_pieces(kernel_client):
    explorer = tokenizer_explorer(kernel_client)
    text = "안녕 👋🇰🇷 똠방각하 𝔘 café ｱｲｳ\r\n\t끝"
    explorer.text.value = text
    assert explorer.message == ""  # no error shown
    assert chip_count(explorer.chips.value) == len(kernel_client.tokenize(text))
    assert "👋" in explorer.chips.value
    assert "바이트 조각: 글자 &#x27;똠&#x27;를 이루는 3바이트 중 1번째" in explorer.chips.value
    assert "바이트 조각: 글자 &#x27;𝔘&#x27;를 이루는 4바이트 중 4번째" in explorer.chips.value


@pytest.mark.slow
def test_explorer_compares_korean_and_english(kernel_client):
    explorer = tokenizer_explorer(kernel_client)
    assert explorer.compare_box.layout.display == "none"
    explorer.compare_toggle.value = True
    assert explorer.compare_box.layout.display != "none"
    assert "토큰 9개 · 글자 18자" in explorer.ko_count.value  # 회의 자료는 메일로 보내 주세요.
    assert "토큰 8개 · 글자 43자" in explorer.en_count.value  # Please send the meeting materials by email.
    assert "한국어가 토큰을 1개 더 써요" in explorer.explanation.value
    explorer.en_text.value = "Let's meet in the meeting room at 3 p.m. tomorrow."
    explorer.ko_text.value = "내일 오후 세 시에 회의실에서 만나요."
    assert "한국어가 토큰을 4개 덜 써요" in explorer.explanation.value  # 13 vs 17: not always more


def test_explorer_service_down_shows_korean_message():
    explorer = tokenizer_explorer(ServiceClient(f"http://127.0.0.1:{closed_port()}/v1"))
    explorer.text.value = "안녕하세요"  # must not raise
    assert "연결하지 못했어요" in explorer.message
    assert 'role="alert"' in explorer.status.value and "Traceback" not in explorer.status.value


# ------------------------------------------------------------------------------------------
# Next-token viewer
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_viewer_draws_chart_and_steps_through_generation(kernel_client):
    viewer = next_token_viewer(kernel_client)
    viewer.top_k.value = 5
    viewer.show_button.click()
    assert viewer.message == ""
    assert chart_png(viewer).startswith(b"\x89PNG")
    assert len(viewer.candidates) == 5 and viewer.candidates[0].text == " 보내"
    assert "␣보내" in viewer.chart.value  # readable list / alt text for screen readers
    assert "지금 온도 1.0" in viewer.note.value

    best = viewer.candidates[0]
    viewer.greedy_button.click()
    assert viewer.prompt.value == "회의 자료는 메일로 보내"
    assert "붙였어요" in viewer.message and best.text.strip() in viewer.message
    assert viewer.candidates[0].text == "지"  # the chart moved on to the next step

    before = viewer.prompt.value
    viewer.sample_button.click()
    assert viewer.prompt.value.startswith(before)
    assert viewer.prompt.value != before or "뽑혔어요" in viewer.message


@pytest.mark.slow
def test_viewer_chart_follows_the_temperature_slider(kernel_client):
    viewer = next_token_viewer(kernel_client, prompt="The capital of France is")
    viewer.show_button.click()
    warm = viewer.candidates[0].prob
    viewer.temperature.value = 0.1
    cold_chart = viewer.chart.value
    assert viewer.candidates[0].prob > warm
    assert "지금 온도 0.1" in viewer.note.value
    viewer.temperature.value = 2.0
    assert viewer.candidates[0].prob < warm and viewer.chart.value != cold_chart
    viewer.top_k.value = 12
    assert len(viewer.candidates) == 12
    viewer.temperature.value = 0.0
    assert viewer.candidates[0].prob == 1.0
    viewer.sample_button.click()  # temperature 0: sampling is the greedy choice
    assert viewer.message.startswith("'") and "100.0%" in viewer.message


@pytest.mark.slow
def test_viewer_shows_korean_errors(kernel_client):
    viewer = next_token_viewer(kernel_client, prompt="   ")
    viewer.show_button.click()
    assert "프롬프트가 비어 있어요" in viewer.message and 'role="alert"' in viewer.status.value
    assert not viewer.show_button.disabled  # busy state cleared


def test_viewer_service_down_shows_korean_message():
    viewer = next_token_viewer(ServiceClient(f"http://127.0.0.1:{closed_port()}/v1"))
    for button in (viewer.show_button, viewer.greedy_button, viewer.sample_button):
        button.click()  # must not raise
        assert "연결하지 못했어요" in viewer.message
    assert viewer.prompt.value == "회의 자료는 메일로"
    assert "Traceback" not in viewer.status.value


def test_viewer_does_not_append_end_marker_or_byte_pieces():
    viewer = next_token_viewer(ScriptedClient(candidates=[TokenProb(1, "<eos>", 0.6), TokenProb(5, " 끝", 0.3), TokenProb(6, ".", 0.1)]), prompt="안녕")
    viewer.greedy_button.click()
    assert viewer.prompt.value == "안녕" and "끝내고 싶어 해요" in viewer.message

    viewer = next_token_viewer(ScriptedClient(candidates=[TokenProb(478, "<0xF0>", 0.7), TokenProb(5, " 끝", 0.2), TokenProb(6, ".", 0.1)]), prompt="안녕")
    viewer.greedy_button.click()
    assert viewer.prompt.value == "안녕 끝" and "바이트 조각" in viewer.message
    assert chart_png(viewer)
