"""Checking OpenAI-style request bodies before they reach an engine (pure functions).

Only parameters listed here are accepted and forwarded: an unknown key is answered with a Korean
400 instead of silently reaching llama.cpp, whose extra knobs (``n_predict``, ``id_slot``,
``n_probs`` ...) would bypass the service's limits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from donghaeng.services.model import errors as E
from donghaeng.services.model.errors import ServiceError, bad_param

MAX_LOGPROBS = 20
MAX_STOPS = 4
MAX_STOP_CHARS = 200

COMMON = {"model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "stop", "stream", "stream_options",
          "seed", "presence_penalty", "frequency_penalty", "repeat_penalty", "n", "user", "ignore_eos"}
COMPLETION_KEYS = COMMON | {"prompt", "logprobs", "echo"}
CHAT_KEYS = COMMON | {"messages", "logprobs", "top_logprobs", "max_completion_tokens"}
CHAT_ROLES = {"system", "user", "assistant", "developer"}


@dataclass
class Request:
    kind: str                      # "completions" | "chat"
    model: str
    stream: bool
    max_tokens: int
    logprobs: int | None           # top-k asked for (completions: logprobs; chat: top_logprobs)
    params: dict[str, Any] = field(default_factory=dict)   # validated sampling parameters
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    include_usage: bool = False

    @property
    def text(self) -> str:
        """The text the learner sent (for the masked prompt log)."""
        if self.prompt is not None:
            return self.prompt
        return "\n".join(m["content"] for m in self.messages or [])


def parse_json(body: bytes, limit: int) -> dict[str, Any]:
    if len(body) > limit:
        raise ServiceError(413, E.MSG_TOO_LARGE.format(size=len(body), limit=limit), reason="request_too_large",
                           limit=limit)
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ServiceError(400, E.MSG_BAD_JSON, reason="malformed_json") from None
    if not isinstance(data, dict):
        raise ServiceError(400, E.MSG_BAD_JSON, reason="malformed_json")
    return data


def _number(data: dict, key: str, lo: float, hi: float, *, lo_open: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_param(key, "숫자여야 해요")
    if value < lo or value > hi or (lo_open and value == lo):
        low = f"{lo:g}보다 크고" if lo_open else f"{lo:g} 이상"
        raise bad_param(key, f"{low} {hi:g} 이하의 숫자여야 해요 (받은 값: {value:g})")
    return float(value)


def _integer(data: dict, key: str, lo: int, hi: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_param(key, "정수여야 해요")
    if value < lo or value > hi:
        raise bad_param(key, f"{lo} 이상 {hi} 이하여야 해요 (받은 값: {value})")
    return value


def _stops(data: dict) -> list[str] | None:
    stop = data.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise bad_param("stop", "글자(문자열) 또는 글자 목록이어야 해요")
    if len(stop) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in stop):
        raise bad_param("stop", f"{MAX_STOPS}개까지, 각각 {MAX_STOP_CHARS}자까지 쓸 수 있어요")
    return [s for s in stop if s] or None


def validate(data: dict[str, Any], kind: str, *, models: list[str], default_model: str,
             max_tokens_limit: int, default_max_tokens: int) -> Request:
    """Check a completions or chat body; raise :class:`ServiceError` (Korean) when it is wrong."""
    allowed = COMPLETION_KEYS if kind == "completions" else CHAT_KEYS
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ServiceError(400, E.MSG_UNKNOWN_PARAM.format(names=", ".join(unknown)), reason="unknown_param",
                           param=unknown[0])
    model = data.get("model") or default_model
    if not isinstance(model, str) or model not in models:
        raise ServiceError(404, E.MSG_UNKNOWN_MODEL.format(model=model, known=", ".join(models)),
                           type=E.NOT_FOUND, reason="model_not_found", param="model")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_param("stream", "true 또는 false여야 해요")
    include_usage = False
    options = data.get("stream_options")
    if options is not None:
        if not isinstance(options, dict) or set(options) - {"include_usage"}:
            raise bad_param("stream_options", '{"include_usage": true} 모양이어야 해요')
        include_usage = bool(options.get("include_usage"))
    n = _integer(data, "n", 1, 1)
    del n  # only one answer per request
    key = "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _integer(data, key, 1, max_tokens_limit)
    params: dict[str, Any] = {}
    for name, lo, hi, lo_open in (("temperature", 0, 2, False), ("top_p", 0, 1, True), ("min_p", 0, 1, False),
                                  ("presence_penalty", -2, 2, False), ("frequency_penalty", -2, 2, False),
                                  ("repeat_penalty", 0, 2, True)):
        value = _number(data, name, lo, hi, lo_open=lo_open)
        if value is not None:
            params[name] = value
    top_k = _integer(data, "top_k", 0, 1000)
    if top_k is not None:
        params["top_k"] = top_k
    seed = _integer(data, "seed", -1, 2**63 - 1)
    if seed is not None:
        params["seed"] = seed
    stops = _stops(data)
    if stops:
        params["stop"] = stops
    ignore_eos = data.get("ignore_eos")
    if ignore_eos is not None:
        if not isinstance(ignore_eos, bool):
            raise bad_param("ignore_eos", "true 또는 false여야 해요")
        params["ignore_eos"] = ignore_eos  # llama.cpp and vLLM: always write max_tokens tokens
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise bad_param("user", "글자(문자열)여야 해요")

    req = Request(kind=kind, model=model, stream=stream, max_tokens=max_tokens or default_max_tokens,
                  logprobs=None, params=params, include_usage=include_usage)
    if kind == "completions":
        prompt = data.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
            raise ServiceError(400, E.MSG_NO_PROMPT, reason="empty_prompt", param="prompt")
        if not isinstance(prompt, str):
            raise bad_param("prompt", "글자(문자열) 하나여야 해요")
        if data.get("echo"):
            raise bad_param("echo", "이 서비스는 echo를 지원하지 않아요")
        req.prompt = prompt
        req.logprobs = _integer(data, "logprobs", 0, MAX_LOGPROBS) or None
    else:
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ServiceError(400, E.MSG_NO_MESSAGES, reason="empty_messages", param="messages")
        clean = []
        for i, m in enumerate(messages):
            if (not isinstance(m, dict) or m.get("role") not in CHAT_ROLES or not isinstance(m.get("content"), str)
                    or set(m) - {"role", "content", "name"}):
                raise bad_param(f"messages[{i}]", '{"role": "user", "content": "..."} 모양이어야 해요 '
                                                  "(role: system, user, assistant)")
            clean.append({"role": m["role"], "content": m["content"]})
        req.messages = clean
        logprobs = data.get("logprobs")
        if logprobs is not None and not isinstance(logprobs, bool):
            raise bad_param("logprobs", "true 또는 false여야 해요")
        top = _integer(data, "top_logprobs", 0, MAX_LOGPROBS)
        if top is not None and not logprobs:
            raise bad_param("top_logprobs", "logprobs: true와 함께 써야 해요")
        req.logprobs = (top or 1) if logprobs else None
    return req
