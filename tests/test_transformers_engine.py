"""``engine = "transformers"``: Hugging Face model folders behind the shared model service.

The folders are made here without a model hub: the packaged GGUF converted by transformers
(``donghaeng.services.model.hfconvert``) and a tiny random-weight Gemma 3 with the real tokenizer and a
chat template (fast API-shape checks).  Both are cached under /var/tmp, never in the repository.
One real lab (hub + service + two transformers workers) serves all slow tests.
"""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import httpx
import labharness
import pytest
from test_model_service import PEOPLE, ServiceLab, korean

from donghaeng.common.settings import PACKAGED_MODEL, SettingsError, load_settings
from donghaeng.toolkit.model_client import TOP_LOGPROBS_DETAIL

CACHE = Path("/var/tmp/donghaeng-hf")
REAL, TINY = "gemma3-hf", "tiny-chat"
CHAT_TEMPLATE = ("{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
                 "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


# ----------------------------------------------------------------------------------------------
# Fast tests: settings
# ----------------------------------------------------------------------------------------------


def _entry(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(f'[[models]]\nname = "m"\n{body}\n', encoding="utf-8")
    return path


def test_transformers_entry_needs_a_complete_hf_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(SettingsError, match=r"has no weights .*no tokenizer"):
        load_settings(_entry(tmp_path, f'engine = "transformers"\npath = "{folder}"'))
    with pytest.raises(SettingsError, match='is a file .*engine = "llama-server"'):
        load_settings(_entry(tmp_path, f'engine = "transformers"\npath = "{PACKAGED_MODEL}"'))
    with pytest.raises(SettingsError, match="needs path"):
        load_settings(_entry(tmp_path, 'engine = "transformers"'))
    with pytest.raises(SettingsError, match='is a folder; llama-server needs a .gguf file .*"transformers"'):
        load_settings(_entry(tmp_path, f'path = "{folder}"'))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    settings = load_settings(_entry(tmp_path, f'engine = "transformers"\npath = "{folder}"'))
    assert settings.models[0].engine == "transformers"
    # Not there yet: accepted; the service reports it as missing (like a missing GGUF file).
    assert load_settings(_entry(tmp_path, f'engine = "transformers"\npath = "{tmp_path}/later"')).models


def test_lab_toml_example_entry_is_valid_when_uncommented(tmp_path):
    text = (labharness.REPO / "hub" / "lab.toml").read_text(encoding="utf-8")
    start = text.index('# engine = "transformers"')
    block = text[text.rindex("# [[models]]", 0, start):].split("\n\n")[0]
    uncommented = "\n".join(line[2:] for line in block.splitlines() if line.startswith("# "))
    path = tmp_path / "lab.toml"
    path.write_text(uncommented.replace("/srv/donghaeng/hf-models/my-model", str(tmp_path / "later")),
                    encoding="utf-8")
    entry = load_settings(path).models[0]
    assert entry.engine == "transformers" and entry.path == tmp_path / "later"


# ----------------------------------------------------------------------------------------------
# Slow tests: one real lab with two transformers engines
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_folders() -> dict[str, Path]:
    """The packaged GGUF as an HF folder (bf16) and a tiny random model; cached across runs."""
    if not PACKAGED_MODEL.is_file():
        pytest.skip(f"packaged model missing: {PACKAGED_MODEL} (./lab up installs it)")
    from donghaeng.services.model.hfconvert import convert_gguf, tiny_random

    CACHE.mkdir(parents=True, exist_ok=True)
    CACHE.chmod(0o755)
    real = convert_gguf(PACKAGED_MODEL, CACHE / "gemma3-270m-bf16")
    tiny = tiny_random(real, CACHE / "tiny-gemma3-chat", chat_template=CHAT_TEMPLATE)
    return {REAL: real, TINY: tiny}


@pytest.fixture(scope="module")
def svc(hf_folders):
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    settings = f"""
[model]
per_user_concurrency = 2
tokens_per_minute = 1000000
request_timeout = 300

[[models]]
name = "{TINY}"
engine = "transformers"
path = "{hf_folders[TINY]}"
context_length = 256
completion_only = false
parallel = 2

[[models]]
name = "{REAL}"
engine = "transformers"
path = "{hf_folders[REAL]}"
context_length = 1024
completion_only = false
parallel = 2
"""
    with labharness.running_lab(PEOPLE, extra_settings=settings) as lab:
        service_lab = ServiceLab(lab, model=TINY)
        service_lab.wait_ready(timeout=300)
        yield service_lab


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first run converts the GGUF (~1 min)
def test_learner_token_is_allowed_and_catalogue_shows_the_engine(svc):
    r = httpx.get(f"{svc.public}/models", headers=svc.headers("learner"), timeout=30, trust_env=False)
    assert r.status_code == 200, r.text
    models = {m["id"]: m for m in r.json()["data"]}
    assert models[TINY]["engine"] == models[REAL]["engine"] == "transformers"
    assert models[REAL]["state"] == "ready" and models[REAL]["context_length"] == 1024


@pytest.mark.slow
def test_no_token_is_denied_in_korean(svc):
    r = httpx.post(f"{svc.base}/completions", json={"model": TINY, "prompt": "안녕"}, timeout=30, trust_env=False)
    assert r.status_code == 401
    korean(r.json())


@pytest.mark.slow
def test_real_model_completion_and_next_token_logprobs(svc):
    r = svc.post("completions", {"model": REAL, "prompt": "대한민국의 수도는", "max_tokens": 1, "logprobs": 5})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model"] == REAL and data["usage"]["completion_tokens"] == 1
    logprobs = data["choices"][0]["logprobs"]
    top = logprobs[TOP_LOGPROBS_DETAIL][0]  # the lab's extension: ids kept, best first
    assert logprobs["top_logprobs"][0] == {t["token"]: t["logprob"] for t in reversed(top)}  # OpenAI's map
    assert len(top) == 5 and all(isinstance(t["id"], int) and t["logprob"] <= 0 for t in top)
    assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
    assert 0 < sum(math.exp(t["logprob"]) for t in top) <= 1.0001
    assert " 서울" in [t["token"] for t in top]          # the real Gemma weights, not random ones
    r = svc.post("completions", {"model": REAL, "prompt": "하나, 둘, 셋,", "max_tokens": 6, "temperature": 0})
    assert r.status_code == 200 and r.json()["choices"][0]["text"].strip(), r.text


@pytest.mark.slow
def test_streaming_with_logprobs_and_usage(svc):
    chunks = svc.stream({"model": TINY, "prompt": "옛날 옛적에 작은 마을에", "max_tokens": 8, "ignore_eos": True,
                         "stream": True, "logprobs": 2, "stream_options": {"include_usage": True}})
    choices = [c["choices"][0] for c in chunks if c.get("choices")]
    assert len(choices) >= 4 and all(c["model"] == TINY for c in chunks)
    tokens = [t for c in choices for t in (c["logprobs"] or {}).get("tokens", [])]
    assert len(tokens) == 8 and all(len(top) == 2 for c in choices for top in c["logprobs"][TOP_LOGPROBS_DETAIL])
    offsets = [o for c in choices for o in c["logprobs"]["text_offset"]]
    assert offsets == sorted(offsets) and offsets[0] == 0     # one running offset across the chunks
    assert chunks[-1]["usage"]["completion_tokens"] == 8


@pytest.mark.slow
def test_chat_uses_the_models_template_and_base_models_say_so(svc):
    r = svc.post("chat/completions", {"model": TINY, "messages": [{"role": "user", "content": "안녕하세요"}],
                                      "max_tokens": 4, "logprobs": True, "top_logprobs": 3})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["message"]["role"] == "assistant" and len(choice["logprobs"]["content"][0]["top_logprobs"]) == 3
    # "<start_of_turn>user\n안녕하세요<end_of_turn>\n<start_of_turn>model\n" plus <bos>: the template was applied
    plain = svc.post("tokenize", {"model": TINY, "prompt": "안녕하세요"}).json()["count"]
    assert r.json()["usage"]["prompt_tokens"] > plain + 4
    r = svc.post("chat/completions", {"model": REAL, "messages": [{"role": "user", "content": "안녕"}]})
    assert r.status_code == 400 and r.json()["error"]["reason"] == "completion_only", r.text
    assert "/v1/completions" in korean(r.json())


@pytest.mark.slow
def test_tokenize_korean_round_trips(svc):
    text = "안녕하세요, 동행랩에서 AI를 배워요!"
    data = svc.post("tokenize", {"model": REAL, "prompt": text, "add_special_tokens": False}).json()
    assert len(data["tokens"]) == len(data["token_strs"]) > 3 and data["max_model_len"] == 1024
    assert "".join(data["token_strs"]) == text
    with_bos = svc.post("tokenize", {"model": REAL, "prompt": text}).json()
    assert with_bos["tokens"] == [2, *data["tokens"]]


@pytest.mark.slow
def test_the_lab_model_client_works_against_the_transformers_engine(svc):
    from donghaeng.toolkit.model_client import ServiceClient

    client = ServiceClient(svc.base, model=REAL, api_token=svc.users["learner2"].token)
    assert "".join(t.text for t in client.tokenize("한국어 토큰")) == "한국어 토큰"
    probs = client.next_tokens("오늘 날씨가", top_k=3)
    assert len(probs) == 3 and all(p.id >= 0 for p in probs)
    assert "".join(client.complete("하나, 둘, 셋,", max_tokens=4, temperature=0))


@pytest.mark.slow
def test_bad_input_is_answered_in_korean(svc):
    cases = [
        ({"model": TINY, "prompt": "hi", "temperature": -1}, 400, "invalid_param"),
        ({"model": TINY, "prompt": "hi", "n_probs": 5}, 400, "unknown_param"),
        ({"model": TINY, "prompt": "가나다라 " * 300, "max_tokens": 8}, 400, "context_length_exceeded"),
    ]
    for body, status, reason in cases:
        r = svc.post("completions", body)
        assert (r.status_code, r.json()["error"]["reason"]) == (status, reason), r.text
        korean(r.json())
    error = svc.post("completions", cases[2][0]).json()["error"]
    assert error["n_ctx"] == 256 and error["n_prompt_tokens"] > 256


@pytest.mark.slow
def test_a_killed_engine_is_restarted(svc):
    before = svc.health()["models"][TINY]["restarts"]
    pids = svc.engine_pids(0)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    r = svc.post("completions", {"model": TINY, "prompt": "안녕", "max_tokens": 2})
    if r.status_code != 200:                      # caught while restarting: a Korean "try again"
        assert r.status_code == 503
        korean(r.json())
    svc.wait_ready(timeout=180, restarts=before + 1)
    assert svc.engine_pids(0) != pids
    r = svc.post("completions", {"model": TINY, "prompt": "안녕하세요", "max_tokens": 3})
    assert r.status_code == 200, r.text
    usage = [json.loads(line) for line in (svc.state / "usage.jsonl").read_text().splitlines()]
    assert any(u["model"] == TINY and u["status"] == 200 for u in usage)
