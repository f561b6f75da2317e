"""The shared model service (``donghaeng.services.model``).

Fast tests check the pieces on their own (request checking, fairness scheduler, usage totals,
logprobs translation, settings, hub roles).  Slow tests start a real hub with the real service
running the packaged Gemma 3 270M in llama.cpp's server, with small limits so the queue fills.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import labharness
import openai
import pytest
from hubclient import HubUser

from donghaeng.toolkit.model_client import TOP_LOGPROBS_DETAIL
from donghaeng.services.model.app import legacy_logprobs, upstream_error
from donghaeng.services.model.engine import piece_text
from donghaeng.services.model.errors import ServiceError
from donghaeng.services.model.scheduler import Scheduler
from donghaeng.services.model.usage import UsageLog, aggregate, read_usage
from donghaeng.services.model.validate import parse_json, validate
from donghaeng.common.settings import PACKAGED_MODEL, SettingsError, load_settings

HANGUL = re.compile(r"[가-힣]")
MODEL = "gemma3-270m"


def korean(err_body: dict) -> str:
    message = err_body["error"]["message"]
    assert HANGUL.search(message), message
    return message


# ----------------------------------------------------------------------------------------------
# Fast tests: no hub, no engine
# ----------------------------------------------------------------------------------------------


def _validate(data: dict, kind: str = "completions"):
    return validate(data, kind, models=[MODEL], default_model=MODEL, max_tokens_limit=512, default_max_tokens=32)


def test_validate_accepts_openai_completion_and_fills_defaults():
    req = _validate({"prompt": "옛날 옛적에", "temperature": 0.7, "top_p": 0.9, "stop": "\n", "stream": True,
                     "logprobs": 5})
    assert (req.model, req.max_tokens, req.stream, req.logprobs) == (MODEL, 32, True, 5)
    assert req.params == {"temperature": 0.7, "top_p": 0.9, "stop": ["\n"]}


@pytest.mark.parametrize("body, param", [
    ({"prompt": "a", "temperature": -0.1}, "temperature"),
    ({"prompt": "a", "temperature": "hot"}, "temperature"),
    ({"prompt": "a", "max_tokens": 10**9}, "max_tokens"),
    ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "a", "top_p": 0}, "top_p"),
    ({"prompt": "a", "logprobs": 50}, "logprobs"),
    ({"prompt": "a", "n": 3}, "n"),
    ({"prompt": "a", "stop": ["a"] * 9}, "stop"),
    ({"prompt": 42}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "a", "n_predict": 100000}, "n_predict"),   # llama.cpp knob that would bypass the limit
])
def test_validate_rejects_bad_params_in_korean(body, param):
    with pytest.raises(ServiceError) as exc:
        _validate(body)
    assert exc.value.status == 400
    assert exc.value.body()["error"]["param"] == param
    korean(exc.value.body())


def test_validate_unknown_model_and_chat_messages():
    with pytest.raises(ServiceError) as exc:
        _validate({"prompt": "a", "model": "gpt-5"})
    assert exc.value.status == 404 and MODEL in exc.value.message
    req = _validate({"messages": [{"role": "user", "content": "안녕"}], "logprobs": True, "top_logprobs": 3}, "chat")
    assert req.messages == [{"role": "user", "content": "안녕"}] and req.logprobs == 3
    with pytest.raises(ServiceError):
        _validate({"messages": [{"role": "robot", "content": "x"}]}, "chat")


def test_parse_json_malformed_and_too_large():
    with pytest.raises(ServiceError) as exc:
        parse_json(b'{"prompt": ', 1000)
    assert exc.value.reason == "malformed_json"
    korean(exc.value.body())
    with pytest.raises(ServiceError) as exc:
        parse_json(b"[1, 2]", 1000)
    assert exc.value.status == 400
    with pytest.raises(ServiceError) as exc:
        parse_json(b"x" * 2000, 1000)
    assert exc.value.status == 413


def test_upstream_context_error_becomes_korean_with_numbers():
    body = json.dumps({"error": {"code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": 5000,
                                 "n_ctx": 4096, "message": "the request exceeds the available context size"}})
    err = upstream_error(400, body.encode(), 4096)
    assert err.reason == "context_length_exceeded"
    message = korean(err.body())
    # donghaeng.toolkit.model_client reads these numbers out of the message
    assert "context length is 4096" in message and "5000 tokens in the prompt" in message


def test_legacy_logprobs_keep_ids_and_byte_pieces():
    content = [
        {"id": 10, "token": "안녕", "bytes": list("안녕".encode()), "logprob": -0.1,
         "top_logprobs": [{"id": 10, "token": "안녕", "bytes": list("안녕".encode()), "logprob": -0.1},
                          {"id": 238, "token": "", "bytes": [0xF0], "logprob": -3.0}]},
        {"id": 11, "token": "하세요", "bytes": list("하세요".encode()), "logprob": -0.2, "top_logprobs": []},
    ]
    offsets = [0]
    out = legacy_logprobs(content, offsets)
    assert out["tokens"] == ["안녕", "하세요"] and out["text_offset"] == [0, 2] and offsets == [5]
    # OpenAI's shape, which the official SDKs parse: one {token: logprob} map per position ...
    assert out["top_logprobs"] == [{"안녕": -0.1, "<0xF0>": -3.0}, {}]
    # ... and the lab's extension keeps ids (and tokens whose texts collide) for the widgets
    assert out[TOP_LOGPROBS_DETAIL][0][1] == {"token": "<0xF0>", "logprob": -3.0, "id": 238}
    assert piece_text([0xEC, 0x95, 0x88]) == "안" and piece_text("▁hi") == "▁hi"


def test_a_tampered_engine_source_is_refused_before_it_is_built(tmp_path):
    from donghaeng.services.model.build import SDIST_FILE, checked_sdist

    tampered = tmp_path / SDIST_FILE
    tampered.write_bytes(b"not the pinned llama.cpp sources")
    with pytest.raises(SystemExit, match="SHA-256이 고정된 값과 달라요"):
        checked_sdist(tampered)


def run(coro):
    return asyncio.run(coro)


def test_scheduler_user_limit_queue_full_and_priority_order():
    async def scenario():
        s = Scheduler({MODEL: 1}, per_user=2, tokens_per_minute=1000, queue_size=1, priority_reserve=1)
        a1 = await s.acquire("a", MODEL, priority=False, timeout=1)            # runs
        a2 = asyncio.ensure_future(s.acquire("a", MODEL, priority=False, timeout=5))  # waits
        await asyncio.sleep(0)
        with pytest.raises(ServiceError) as exc:                              # a: 2 already
            await s.acquire("a", MODEL, priority=False, timeout=1)
        assert exc.value.reason == "user_concurrency" and exc.value.status == 429
        with pytest.raises(ServiceError) as exc:                              # queue 1/1
            await s.acquire("b", MODEL, priority=False, timeout=1)
        assert exc.value.reason == "queue_full"
        assert exc.value.body()["error"]["queue_size"] == 1
        assert "잠시 후 다시 시도해 주세요" in exc.value.message
        t = asyncio.ensure_future(s.acquire("t", MODEL, priority=True, timeout=5))   # reserve place
        await asyncio.sleep(0)
        assert s.waiting == 2
        s.release(a1)
        trainer = await asyncio.wait_for(t, 1)
        await asyncio.sleep(0.01)
        assert not a2.done()                                                  # trainer first
        s.release(trainer)
        second = await a2
        s.release(second)
        assert s.active[MODEL] == 0 and s.waiting == 0 and s.user_load["a"] == 0

    run(scenario())


def test_scheduler_queue_timeout_and_cancel_free_the_place():
    async def scenario():
        s = Scheduler({MODEL: 1}, per_user=5, tokens_per_minute=1000, queue_size=5)
        first = await s.acquire("a", MODEL, priority=False, timeout=1)
        with pytest.raises(ServiceError) as exc:
            await s.acquire("b", MODEL, priority=False, timeout=0.05)
        assert exc.value.reason == "queue_timeout"
        waiting = asyncio.ensure_future(s.acquire("c", MODEL, priority=False, timeout=5))
        await asyncio.sleep(0)
        waiting.cancel()                    # the client went away while waiting
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert s.waiting == 0 and s.user_load["b"] == 0 and s.user_load["c"] == 0
        s.release(first)
        assert s.active[MODEL] == 0

    run(scenario())


def test_scheduler_token_rate_limit():
    async def scenario():
        s = Scheduler({MODEL: 4}, per_user=4, tokens_per_minute=100, queue_size=4)
        t = await s.acquire("a", MODEL, priority=False, timeout=1)
        s.release(t)
        s.charge("a", 120)
        with pytest.raises(ServiceError) as exc:
            await s.acquire("a", MODEL, priority=False, timeout=1)
        assert exc.value.reason == "tokens_per_minute" and int(exc.value.headers["Retry-After"]) >= 1
        korean(exc.value.body())
        other = await s.acquire("b", MODEL, priority=False, timeout=1)     # others are not affected
        s.release(other)

    run(scenario())


def test_usage_log_masks_or_omits_prompts_and_aggregates(tmp_path):
    log = UsageLog(tmp_path / "usage.jsonl", log_prompts=False)
    common = dict(model=MODEL, endpoint="completions", status=200, latency_s=0.5, stream=True)
    log.write(user="kim", groups=["learner", "nbgrader-ai-basics"], prompt_tokens=10, completion_tokens=20,
              prompt="제 전화번호는 010-1234-5678이에요", **common)
    log.write(user="lee", groups=["learner", "nbgrader-ai-basics", "nbgrader-ttt"], prompt_tokens=5,
              completion_tokens=7, **common)
    log.write(user="choi", groups=["trainer", "nbgrader-ttt"], prompt_tokens=1, completion_tokens=1,
              **{**common, "status": 429})
    log.close()
    text = (tmp_path / "usage.jsonl").read_text()
    assert "010-1234-5678" not in text and "prompt_masked" not in text
    by_course = aggregate(read_usage(tmp_path / "usage.jsonl"), "course")
    assert by_course["ai-basics"]["requests"] == 2 and by_course["ai-basics"]["completion_tokens"] == 27
    assert by_course["ttt"] == {**by_course["ttt"], "requests": 2, "errors": 1, "users": 2}
    assert aggregate(read_usage(tmp_path / "usage.jsonl"), "role")["learner"]["users"] == 2

    masked_log = UsageLog(tmp_path / "masked.jsonl", log_prompts=True)
    record = masked_log.write(user="kim", groups=[], prompt_tokens=1, completion_tokens=1,
                              prompt="제 전화번호는 010-1234-5678이에요", **common)
    masked_log.close()
    assert "010-1234-5678" not in json.dumps(record, ensure_ascii=False)
    assert "[전화번호]" in record.get("prompt_masked", "[전화번호]")  # omitted entirely if no masker exists


def test_settings_default_catalogue_and_bad_entries(tmp_path):
    settings = load_settings(labharness.REPO / "hub" / "lab.toml")
    assert settings.models[0].name == MODEL and settings.models[0].path == PACKAGED_MODEL
    assert settings.models[0].completion_only
    bad = tmp_path / "lab.toml"
    bad.write_text('[[models]]\nname = "ext"\nengine = "openai"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="needs url"):
        load_settings(bad)
    bad.write_text('[model]\nper_user_concurency = 3\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="per_user_concurency"):
        load_settings(bad)


def test_roles_and_ports_register_the_service(tmp_path):
    from donghaeng.hub.services import internal_ports
    from donghaeng.hub.roles import hub_roles

    path = tmp_path / "lab.toml"
    path.write_text(f'[lab]\ndata_dir = "{tmp_path}"\nport = 9000\n' + labharness.COURSES, encoding="utf-8")
    settings = load_settings(path)
    ports = internal_ports(settings)
    assert ports["model"] == 9003 and len(set(ports.values())) == len(ports)
    roles = {r["name"]: r for r in hub_roles(settings)}
    assert roles["model-users"]["scopes"] == ["access:services!service=model"]
    assert set(roles["model-users"]["groups"]) == {"learner", "trainer", "admin"}
    assert roles["model-service"]["services"] == ["model"]


class FakeHubAuth:
    """Stands in for HubAuth: three tokens, as the hub would describe them."""

    access_scopes = {"access:services!service=model"}
    api_url, api_token = "http://127.0.0.1:9/hub/api", "unused"
    users = {
        "learner-token": {"name": "kim", "groups": ["learner", "nbgrader-ai-basics"],
                          "scopes": ["access:services!service=model"]},
        "outsider-token": {"name": "park", "groups": [], "scopes": ["read:users:name!user=park"]},
    }

    async def user_for_token(self, token, sync=False):
        return self.users.get(token)

    def check_scopes(self, required, user):
        from jupyterhub.services.auth import check_scopes

        return check_scopes(required, set(user["scopes"]))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_external_openai_engine_is_proxied_with_auth_limits_and_usage(tmp_path):
    """engine = "openai": the service forwards to an upstream (here a fake vLLM) with its key."""
    from tornado import web
    from tornado.httpserver import HTTPServer

    from donghaeng.services.model.app import ModelService, make_app
    from donghaeng.services.model.config import ServiceConfig
    from donghaeng.common.settings import ModelEntry
    from donghaeng.common.settings import ModelService as ServiceSettings

    seen: list[dict] = []

    class Upstream(web.RequestHandler):
        def get(self):  # /v1/models
            self.finish({"data": [{"id": "qwen"}]})

        async def post(self):  # /v1/completions
            body = json.loads(self.request.body)
            seen.append({"auth": self.request.headers.get("Authorization"), **body})
            if not body.get("stream"):
                return self.finish({"choices": [{"text": " 서울", "index": 0, "logprobs": None}], "model": "qwen",
                                    "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
            self.set_header("Content-Type", "text/event-stream")
            for piece in ["하나", "둘", "셋"]:
                self.write(f"data: {json.dumps({'choices': [{'text': piece, 'index': 0}]})}\n\n")
                await self.flush()
            self.finish("data: [DONE]\n\n")

    async def scenario():
        up_port, port = _free_port(), _free_port()
        upstream = HTTPServer(web.Application([(r"/v1/models", Upstream), (r"/v1/completions", Upstream)]))
        upstream.listen(up_port, "127.0.0.1")
        cfg = ServiceConfig(
            service=ServiceSettings(per_user_concurrency=1),
            models=[ModelEntry(name="qwen-7b", engine="openai", url=f"http://127.0.0.1:{up_port}/v1",
                               upstream_model="qwen", api_key="sk-upstream", completion_only=False)],
            state_dir=tmp_path / "state", port=port)
        svc = ModelService(cfg, hub_auth=FakeHubAuth())
        server = HTTPServer(make_app(svc))
        server.listen(port, "127.0.0.1")
        await svc.start()
        base = f"http://127.0.0.1:{port}/services/model/v1"
        learner = {"Authorization": "token learner-token"}
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
                for _ in range(50):
                    if (await http.get(f"{base[:-3]}/health")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                r = await http.post(f"{base}/completions", json={"prompt": "수도는"}, headers=learner)
                assert r.status_code == 200 and r.json()["model"] == "qwen-7b"
                assert seen[-1]["auth"] == "Bearer sk-upstream" and seen[-1]["model"] == "qwen"
                assert seen[-1]["max_tokens"] == 256  # default_max_tokens filled in
                r = await http.post(f"{base}/completions", json={"prompt": "수", "stream": True}, headers=learner)
                events = [ln[5:].strip() for ln in r.text.splitlines() if ln.startswith("data:")]
                assert events[-1] == "[DONE]" and len(events) == 4
                r = await http.post(f"{base}/completions", json={"prompt": "수"},
                                    headers={"Authorization": "token outsider-token"})
                assert r.status_code == 403
                korean(r.json())
                r = await http.post(f"{base}/tokenize", json={"prompt": "수"}, headers=learner)
                assert r.status_code == 501  # this upstream has no /tokenize
                upstream.stop()  # the upstream goes away: Korean 503, the service keeps answering
                await upstream.close_all_connections()
                r = await http.post(f"{base}/completions", json={"prompt": "수도는"}, headers=learner)
                assert r.status_code == 503
                korean(r.json())
                assert (await http.get(f"{base}/models", headers=learner)).status_code == 200
        finally:
            server.stop()
            await svc.stop()
        records = list(read_usage(cfg.usage_log))
        assert [r["status"] for r in records] == [200, 200, 503]  # the outsider never got in: metrics only
        assert records[1]["completion_tokens"] == 3 and records[0]["courses"] == ["ai-basics"]

    run(scenario())


# ----------------------------------------------------------------------------------------------
# Slow tests: a real hub with the real service and the packaged model
# ----------------------------------------------------------------------------------------------

# Small limits so that a handful of requests fill the engine and the queue.
MODEL_SETTINGS = f"""
[model]
per_user_concurrency = 2
queue_size = 1
priority_reserve = 1
tokens_per_minute = 1000000
request_timeout = 90
max_tokens = 600

[[models]]
name = "{MODEL}"
path = "{PACKAGED_MODEL}"
context_length = 1024
parallel = 1
"""

PEOPLE = {
    "learner": ("김하늘", "learner", "ai-basics"),
    "learner2": ("이수민", "learner", "ai-basics"),
    "trainer": ("최은정", "trainer", "ai-basics"),
}



class ServiceLab:
    def __init__(self, lab: labharness.Lab, model: str = MODEL) -> None:
        from donghaeng.hub.services import internal_ports

        self.lab = lab
        self.model = model  # the catalogue entry wait_ready watches
        self.base = f"http://127.0.0.1:{internal_ports(lab.settings)['model']}/services/model/v1"
        self.public = f"{lab.url}/services/model/v1"
        self.users = {key: HubUser.logged_in(lab, key) for key in PEOPLE}
        self.state = lab.settings.paths.root / "model"

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"token {self.users[key].token}"} if key else {}

    def post(self, path: str, body, key: str | None = "learner", timeout: float = 120, **kw) -> httpx.Response:
        content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return httpx.post(f"{self.base}/{path}", content=content, headers=self.headers(key), timeout=timeout,
                          trust_env=False, **kw)

    def stream(self, body: dict, key: str = "learner", timeout: float = 120) -> list[dict]:
        """A streamed completion: checks the SSE framing, returns the JSON chunks (without [DONE])."""
        with httpx.stream("POST", f"{self.base}/completions", json=body, headers=self.headers(key),
                          timeout=timeout, trust_env=False) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = list(stream_lines(r))
        assert events[-1] == "[DONE]"
        return [json.loads(e) for e in events[:-1]]

    def health(self) -> dict:
        return httpx.get(f"{self.base[:-3]}/health", timeout=5, trust_env=False).json()

    def wait_ready(self, timeout: float = 180, restarts: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                h = self.health()
                state = h["models"][self.model]
                if h["status"] == "ok" and state["restarts"] >= restarts:
                    return h
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"model service not ready: {self.health()}")

    def engine_pids(self, index: int = 0) -> list[int]:
        """The engine process of the *index*-th catalogue entry (found by its private socket)."""
        sock = str(self.state / "run" / f"engine-{index}.sock")
        out = subprocess.run(["pgrep", "-f", sock], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


def stream_lines(resp: httpx.Response):
    for line in resp.iter_lines():
        if line.startswith("data:"):
            yield line[5:].strip()


@pytest.fixture(scope="module")
def svc():
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    if not PACKAGED_MODEL.is_file():
        pytest.skip(f"packaged model missing: {PACKAGED_MODEL} (./lab up installs it)")
    from donghaeng.services.model.build import build, is_usable
    from donghaeng.common.settings import ModelService

    binary = ModelService().engine_binary
    if not is_usable(binary):  # the ./lab install step, once
        build(binary.parent.parent)
    with labharness.running_lab(PEOPLE, extra_settings=MODEL_SETTINGS) as lab:
        service_lab = ServiceLab(lab)
        service_lab.wait_ready()
        yield service_lab


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first slow test may build the engine once (~10 min on 2 cores)
def test_learner_token_is_allowed(svc):
    r = httpx.get(f"{svc.base}/models", headers=svc.headers("learner"), timeout=30, trust_env=False)
    assert r.status_code == 200, r.text
    model = r.json()["data"][0]
    assert model["id"] == MODEL and model["completion_only"] and model["context_length"] == 1024
    # the same through the hub's public proxy
    r = httpx.get(f"{svc.public}/models", headers=svc.headers("learner"), timeout=30, trust_env=False)
    assert r.status_code == 200 and r.json()["data"][0]["id"] == MODEL


@pytest.mark.slow
@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "token not-a-real-token"}, 401)])
def test_no_or_bad_token_is_denied_in_korean(svc, headers, status):
    for base in (svc.base, svc.public):
        r = httpx.post(f"{base}/completions", json={"prompt": "안녕"}, headers=headers, timeout=30, trust_env=False)
        assert r.status_code == status, r.text
        korean(r.json())


@pytest.mark.slow
def test_another_services_token_is_denied(svc):
    """A course grader's own hub token is valid, but it is not allowed to use the model service."""
    pid = subprocess.run(["pgrep", "-f", "donghaeng.grading.formgrader"], capture_output=True, text=True).stdout.split()
    tokens = []
    for p in pid:
        environ = Path(f"/proc/{p}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
        if env.get("JUPYTER_CONFIG_PATH") == str(svc.lab.settings.paths.jupyter_config):
            tokens.append(env["JUPYTERHUB_API_TOKEN"])
    assert tokens, "no grader service of this lab found"
    r = httpx.post(f"{svc.base}/completions", json={"prompt": "안녕"},
                   headers={"Authorization": f"token {tokens[0]}"}, timeout=30, trust_env=False)
    assert r.status_code == 403, r.text
    korean(r.json())


@pytest.mark.slow
def test_streaming_returns_several_chunks(svc):
    chunks = svc.stream({"model": MODEL, "prompt": "옛날 옛적에 작은 마을에", "max_tokens": 12, "temperature": 0.8,
                         "ignore_eos": True, "stream": True}, timeout=60)
    texts = [c["choices"][0]["text"] for c in chunks if c.get("choices")]
    assert sum(1 for t in texts if t) >= 5, texts
    assert all(c["model"] == MODEL for c in chunks)


@pytest.mark.slow
def test_logprobs_give_the_next_token_distribution(svc):
    r = svc.post("completions", {"prompt": "대한민국의 수도는", "max_tokens": 1, "temperature": 1.0, "logprobs": 5})
    assert r.status_code == 200, r.text
    data = r.json()
    top = data["choices"][0]["logprobs"][TOP_LOGPROBS_DETAIL][0]
    assert len(top) == 5
    assert all(isinstance(t["id"], int) and t["logprob"] <= 0 for t in top)
    openai_map = data["choices"][0]["logprobs"]["top_logprobs"][0]
    assert set(openai_map) == {t["token"] for t in top}
    assert all(openai_map[t["token"]] >= t["logprob"] for t in top)  # equal texts: the likeliest one
    assert 0 < sum(__import__("math").exp(t["logprob"]) for t in top) <= 1.0001
    assert data["usage"]["completion_tokens"] == 1


@pytest.mark.slow
def test_the_official_openai_sdk_reads_completions_logprobs_and_streams(svc):
    sdk = openai.OpenAI(base_url=svc.base, api_key=svc.users["learner"].token,
                        http_client=httpx.Client(trust_env=False))  # the SDK sends "Bearer <hub token>"
    done = sdk.completions.create(model=MODEL, prompt="대한민국의 수도는", max_tokens=1, temperature=1.0, logprobs=5)
    top = done.choices[0].logprobs.top_logprobs[0]
    assert done.model == MODEL and len(top) == 5
    assert all(isinstance(token, str) and logprob <= 0 for token, logprob in top.items())
    texts = [chunk.choices[0].text for chunk in sdk.completions.create(
        model=MODEL, prompt="옛날 옛적에 작은 마을에", max_tokens=12, temperature=0.8, stream=True,
        extra_body={"ignore_eos": True}) if chunk.choices]
    assert sum(1 for t in texts if t) >= 5, texts
    with pytest.raises(openai.BadRequestError) as refused:  # a learner's mistake: a Korean message, no retry
        sdk.completions.create(model=MODEL, prompt="안녕", max_tokens=2, temperature=9)
    assert HANGUL.search(str(refused.value))


@pytest.mark.slow
def test_tokenize_korean_with_token_strings(svc):
    text = "안녕하세요, 동행랩에서 AI를 배워요!"
    r = svc.post("tokenize", {"prompt": text, "add_special_tokens": False})
    assert r.status_code == 200, r.text
    data = r.json()
    assert len(data["tokens"]) == len(data["token_strs"]) > 3
    assert "".join(data["token_strs"]).replace("\u2581", " ") == text
    assert data["max_model_len"] == 1024
    with_bos = svc.post("tokenize", {"prompt": text}).json()
    assert len(with_bos["tokens"]) == len(data["tokens"]) + 1  # <bos> by default, like vLLM


@pytest.mark.slow
def test_the_lab_model_client_works_against_the_service(svc):
    from donghaeng.toolkit.model_client import ServiceClient

    client = ServiceClient(svc.base, model=MODEL, api_token=svc.users["learner2"].token)
    tokens = client.tokenize("한국어 토큰")
    assert tokens and "".join(t.text for t in tokens) == "한국어 토큰"
    assert client.context_length == 1024
    probs = client.next_tokens("오늘 날씨가", top_k=5)
    assert len(probs) == 5 and all(p.id >= 0 for p in probs)
    text = "".join(client.complete("하나, 둘, 셋,", max_tokens=8, temperature=0))
    assert text


@pytest.mark.slow
def test_bad_input_is_answered_in_korean(svc):
    cases = [
        (b'{"prompt": "hi", ', 400, "malformed_json"),
        ({"prompt": "hi", "temperature": -1}, 400, "invalid_param"),
        ({"prompt": "hi", "max_tokens": 10**7}, 400, "invalid_param"),
        ({"prompt": "가나다라 " * 900, "max_tokens": 8}, 400, "context_length_exceeded"),
        ({"prompt": "hi", "model": "gpt-4"}, 404, "model_not_found"),
    ]
    for body, status, reason in cases:
        r = svc.post("completions", body)
        assert (r.status_code, r.json()["error"]["reason"]) == (status, reason), r.text
        korean(r.json())
    r = svc.post("chat/completions", {"messages": [{"role": "user", "content": "안녕"}]})
    assert r.status_code == 400 and r.json()["error"]["reason"] == "completion_only"
    assert "/v1/completions" in korean(r.json())
    r = svc.post("completions", b"x" * 1_100_000)
    assert r.status_code == 413
    korean(r.json())


def _long_stream(svc, key: str, results: dict, name: str, max_tokens: int = 300) -> None:
    body = {"prompt": "한국의 역사를 길게 이야기해 볼게요.", "max_tokens": max_tokens, "ignore_eos": True,
            "stream": True, "temperature": 0.7}
    start = time.monotonic()
    with httpx.stream("POST", f"{svc.base}/completions", json=body, headers=svc.headers(key), timeout=120,
                      trust_env=False) as r:
        status = r.status_code
        events = list(stream_lines(r)) if status == 200 else []
    results[name] = {"status": status, "end": time.monotonic(), "start": start, "events": len(events)}


@pytest.mark.slow
def test_queue_full_and_per_user_limit_answer_429_in_korean_and_trainers_go_first(svc):
    results: dict = {}
    threads = [threading.Thread(target=_long_stream, args=(svc, "learner", results, "a1"))]
    threads[0].start()
    time.sleep(1.0)                                   # a1 holds the only engine slot
    threads.append(threading.Thread(target=_long_stream, args=(svc, "learner", results, "a2", 20)))
    threads[1].start()
    time.sleep(0.5)                                   # a2 waits: the queue (size 1) is full
    r = svc.post("completions", {"prompt": "안녕", "max_tokens": 2}, key="learner")
    assert r.status_code == 429 and r.json()["error"]["reason"] == "user_concurrency", r.text
    assert r.headers["x-should-retry"] == "false"  # OpenAI's SDKs would otherwise retry into the full queue
    korean(r.json())
    r = svc.post("completions", {"prompt": "안녕", "max_tokens": 2}, key="learner2")
    assert r.status_code == 429 and r.json()["error"]["reason"] == "queue_full", r.text
    error = r.json()["error"]
    assert "잠시 후 다시 시도해 주세요" in error["message"]
    assert (error["queue_length"], error["queue_size"]) == (1, 1) and r.headers["Retry-After"]
    assert r.headers["x-should-retry"] == "false"
    sent = []  # the official SDK (2 automatic retries by default) gives up at once, with the Korean message
    sdk = openai.OpenAI(base_url=svc.base, api_key=svc.users["learner2"].token,
                        http_client=httpx.Client(trust_env=False, event_hooks={"request": [sent.append]}))
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.completions.create(model=MODEL, prompt="안녕", max_tokens=2)
    assert len(sent) == 1 and "잠시 후 다시 시도해 주세요" in str(refused.value)
    threads.append(threading.Thread(target=_long_stream, args=(svc, "trainer", results, "t", 20)))
    threads[2].start()                                # the trainer's reserve place, ahead of a2
    for t in threads:
        t.join(180)
    assert all(results[k]["status"] == 200 for k in ("a1", "a2", "t")), results
    assert results["t"]["end"] < results["a2"]["end"]


@pytest.mark.slow
def test_client_disconnect_cancels_the_engine_request(svc):
    body = {"prompt": "끝없이 이어지는 이야기:", "max_tokens": 600, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{svc.base}/completions", json=body, headers=svc.headers("learner"), timeout=60,
                      trust_env=False) as r:
        lines = stream_lines(r)
        for _ in range(3):
            next(lines)
    # With one engine slot, a 600-token answer would hold it for many seconds; freed at once instead.
    start = time.monotonic()
    r = svc.post("completions", {"prompt": "안녕", "max_tokens": 2}, key="learner2", timeout=60)
    assert r.status_code == 200, r.text
    assert time.monotonic() - start < 5
    time.sleep(0.5)
    usage = [json.loads(line) for line in (svc.state / "usage.jsonl").read_text().splitlines()]
    assert any(u["status"] == 499 and u["reason"] == "client_disconnected" for u in usage)


@pytest.mark.slow
def test_service_and_engine_run_unprivileged(svc):
    import pwd

    pids = svc.engine_pids()
    assert len(pids) == 1
    status = Path(f"/proc/{pids[0]}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
    assert pwd.getpwuid(uid).pw_name == "donghaeng-model"
    parent = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
    assert "donghaeng.services.model" in Path(f"/proc/{parent}/cmdline").read_text()
    assert Path(f"/proc/{parent}/status").read_text().count(f"\t{uid}\t") >= 1
    assert (svc.state / "run").stat().st_mode & 0o077 == 0  # the engine socket is private


@pytest.mark.slow
def test_usage_log_and_metrics(svc):
    records = list(read_usage(svc.state / "usage.jsonl"))
    learner = svc.lab.logins["learner"]
    mine = [r for r in records if r["user"] == learner]
    assert mine and all(r["courses"] == ["ai-basics"] and r["role"] == "learner" for r in mine)
    assert all("prompt" not in r for r in records)          # no prompt text by default
    ok = [r for r in mine if r["status"] == 200 and r["completion_tokens"]]
    assert ok and all(r["latency_s"] > 0 and r["prompt_tokens"] for r in ok)
    totals = aggregate(records, "course")
    assert totals["ai-basics"]["users"] >= 2
    r = httpx.get(f"{svc.base[:-3]}/metrics", headers=svc.headers("trainer"), timeout=30, trust_env=False)
    assert r.status_code == 200
    assert 'donghaeng_model_requests_total{endpoint="completions",model="gemma3-270m",status="200"}' in r.text
    assert "donghaeng_model_time_to_first_token_seconds_bucket" in r.text
    assert 'donghaeng_model_rejected_total{reason="queue_full"}' in r.text
    assert learner not in r.text
    r = httpx.get(f"{svc.base[:-3]}/metrics", headers=svc.headers("learner"), timeout=30, trust_env=False)
    assert r.status_code == 403


@pytest.mark.slow
def test_a_killed_engine_is_restarted_and_in_flight_requests_get_korean_errors(svc):
    before = svc.health()["models"][MODEL]["restarts"]
    body = {"prompt": "이야기를 시작할게요.", "max_tokens": 500, "ignore_eos": True, "stream": True}
    events = []
    with httpx.stream("POST", f"{svc.base}/completions", json=body, headers=svc.headers("learner"), timeout=60,
                      trust_env=False) as r:
        lines = stream_lines(r)
        events.append(next(lines))
        for pid in svc.engine_pids():
            os.kill(pid, signal.SIGKILL)
        events.extend(lines)
    errors = [json.loads(e) for e in events if e != "[DONE]" and "error" in json.loads(e)]
    assert errors, events[-3:]
    assert errors[-1]["error"]["code"] == 503
    korean(errors[-1])
    r = svc.post("completions", {"prompt": "안녕", "max_tokens": 2})
    assert r.status_code in (200, 503)
    if r.status_code == 503:                       # still loading: a Korean "try again" answer
        korean(r.json())
    svc.wait_ready(timeout=120, restarts=before + 1)
    r = svc.post("completions", {"prompt": "안녕하세요", "max_tokens": 4})
    assert r.status_code == 200, r.text
