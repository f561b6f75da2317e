"""The model service: a tornado app that JupyterHub runs as the managed service ``model``.

Routes (under ``$JUPYTERHUB_SERVICE_PREFIX``, e.g. ``/services/model/``):

* ``GET  v1/models``            the catalogue (token needed)
* ``POST v1/completions``       OpenAI text completions; ``stream: true`` gives Server-Sent Events
* ``POST v1/chat/completions``  OpenAI chat (models that are not ``completion_only``)
* ``POST v1/tokenize``          ``{"prompt"}`` -> ``{"tokens", "token_strs", "count", "max_model_len"}``
* ``GET  health``               engine states, no token needed (200 when every engine is ready)
* ``GET  metrics``              Prometheus text (trainers and admins)

Every request but ``health`` carries a JupyterHub token (``Authorization: token ...`` or
``Bearer ...``) with the scope ``access:services!service=model``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
from jupyterhub.services.auth import HubAuth
from tornado import web
from tornado.iostream import StreamClosedError

from donghaeng.services import runtime as service_runtime
from donghaeng.services.metrics import may_scrape
from donghaeng.toolkit.model_client import TOP_LOGPROBS_DETAIL
from donghaeng.services.model import errors as E
from donghaeng.services.model.config import ServiceConfig
from donghaeng.services.model.engine import (
    MISSING,
    Engine,
    LlamaServerEngine,
    OpenAIEngine,
    TransformersEngine,
    piece_text,
)
from donghaeng.services.model.errors import ServiceError
from donghaeng.services.model.metrics import Metrics
from donghaeng.services.model.scheduler import Scheduler
from donghaeng.services.model.usage import UsageLog
from donghaeng.services.model.validate import Request, parse_json, validate

log = logging.getLogger("donghaeng.services.model")

TOKEN_HEADER = ("token ", "bearer ")
GROUP_CACHE_S = 60.0
DISCONNECT_POLL_S = 0.25


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    admin: bool
    priority: bool
    scraper: bool = False  # the token may read metrics (the lab's Prometheus, donghaeng.services.metrics)


class ModelService:
    """Engines, limits, metrics, usage log and hub authentication, shared by all handlers."""

    def __init__(self, cfg: ServiceConfig, *, hub_auth: HubAuth | None = None) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.engines: dict[str, Engine] = {}
        try:
            cfg.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:  # engines will report it in /health; the service still answers
            log.error("cannot create %s: %s", cfg.run_dir, exc)
        for i, entry in enumerate(cfg.models):
            if entry.engine == "llama-server":
                engine: Engine = LlamaServerEngine(entry, self.metrics, binary=cfg.service.engine_binary,
                                                   run_dir=cfg.run_dir, index=i)
            elif entry.engine == "transformers":
                engine = TransformersEngine(entry, self.metrics, run_dir=cfg.run_dir, index=i)
            else:
                engine = OpenAIEngine(entry, self.metrics)
            self.engines[entry.name] = engine
        s = cfg.service
        self.scheduler = Scheduler({m.name: m.parallel for m in cfg.models}, per_user=s.per_user_concurrency,
                                   tokens_per_minute=s.tokens_per_minute, queue_size=s.queue_size,
                                   priority_reserve=s.priority_reserve)
        self.usage = UsageLog(cfg.usage_log, log_prompts=s.log_prompts)
        self.hub_auth = hub_auth or HubAuth(cache_max_age=60)
        self._groups: dict[str, tuple[float, tuple[str, ...], bool]] = {}

    @property
    def default_model(self) -> str:
        return self.cfg.models[0].name

    async def start(self) -> None:
        for engine in self.engines.values():
            await engine.start()

    async def stop(self) -> None:
        for engine in self.engines.values():
            await engine.stop()
        self.usage.close()

    def update_gauges(self) -> None:
        for name in self.engines:
            self.metrics.queue_length.labels(name).set(self.scheduler.waiting_for(name))
            self.metrics.active.labels(name).set(self.scheduler.active[name])

    async def user_groups(self, model: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
        """Groups and admin flag of a user: from the token's user model when it shows them,
        else asked from the hub with the service's own token (cached for a minute)."""
        name = model["name"]
        if "groups" in model:
            return tuple(model["groups"]), bool(model.get("admin"))
        cached = self._groups.get(name)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_S:
            return cached[1], cached[2]
        groups: tuple[str, ...] = ()
        admin = False
        try:
            async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
                r = await client.get(f"{self.hub_auth.api_url}/users/{name}",
                                     headers={"Authorization": f"token {self.hub_auth.api_token}"})
            if r.status_code == 200:
                data = r.json()
                groups, admin = tuple(data.get("groups") or ()), bool(data.get("admin"))
        except httpx.HTTPError as exc:
            log.warning("could not read groups of %s: %s", name, exc)
        self._groups[name] = (time.monotonic(), groups, admin)
        return groups, admin


# ----------------------------------------------------------------------------------------------
# Handlers
# ----------------------------------------------------------------------------------------------


class BaseHandler(web.RequestHandler):
    endpoint = "other"

    def initialize(self, svc: ModelService) -> None:
        self.svc = svc
        self.t0 = time.monotonic()

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self) -> None:  # token-only API: no cookies are ever honoured
        return

    def fail(self, err: ServiceError) -> None:
        if self._finished:
            return
        if self._headers_written:  # a stream already started: report in-band
            try:
                self.write(err.sse())
                self.write(b"data: [DONE]\n\n")
                self.finish()
            except StreamClosedError:
                pass
            return
        self.clear()
        self.set_status(err.status)
        for k, v in err.headers.items():
            self.set_header(k, v)
        self.finish(json.dumps(err.body(), ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        err = ServiceError(status_code, E.MSG_NOT_FOUND if status_code == 404 else E.MSG_UPSTREAM.format(
            detail=self._reason), type=E.NOT_FOUND if status_code == 404 else E.SERVER, reason="http_error")
        self.finish(json.dumps(err.body(), ensure_ascii=False))

    async def authenticate(self) -> User:
        header = self.request.headers.get("Authorization", "")
        token = ""
        for prefix in TOKEN_HEADER:
            if header.lower().startswith(prefix):
                token = header[len(prefix):].strip()
        if not token:
            raise ServiceError(401, E.MSG_NO_TOKEN, type=E.AUTH, reason="missing_token",
                               headers={"WWW-Authenticate": "token"})
        try:
            model = await self.svc.hub_auth.user_for_token(token, sync=False)
        except web.HTTPError as exc:
            log.error("hub authentication failed: %s", exc)
            raise ServiceError(503, E.MSG_HUB_DOWN, type=E.SERVER, reason="hub_unavailable") from None
        if not model or not model.get("name"):
            raise ServiceError(401, E.MSG_BAD_TOKEN, type=E.AUTH, reason="invalid_token",
                               headers={"WWW-Authenticate": "token"})
        if not self.svc.hub_auth.check_scopes(self.svc.hub_auth.access_scopes, model):
            raise ServiceError(403, E.MSG_FORBIDDEN, type=E.PERMISSION, reason="forbidden")
        groups, admin = await self.svc.user_groups(model)
        priority = admin or any(g in self.svc.cfg.service.priority_groups for g in groups)
        return User(model["name"], groups, admin, priority, may_scrape(model))

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, ensure_ascii=False))


class IndexHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"service": "동행랩 언어 모델 서비스 / Donghaeng Lab model service",
                        "endpoints": ["v1/models", "v1/completions", "v1/chat/completions", "v1/tokenize",
                                      "health", "metrics"]})


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        models = {name: {"state": e.state, "restarts": e.restarts, **({"detail": e.detail} if e.detail else {})}
                  for name, e in self.svc.engines.items()}
        ok = all(e.ready for e in self.svc.engines.values())
        self.send_json({"status": "ok" if ok else "degraded", "models": models,
                        "active": sum(self.svc.scheduler.active.values()), "waiting": self.svc.scheduler.waiting},
                       200 if ok else 503)


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        try:
            user = await self.authenticate()
            if not (user.priority or user.scraper):
                raise ServiceError(403, E.MSG_METRICS_FORBIDDEN, type=E.PERMISSION, reason="forbidden")
        except ServiceError as err:
            return self.fail(err)
        self.svc.update_gauges()
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.svc.metrics.render())


class ModelsHandler(BaseHandler):
    async def get(self) -> None:
        try:
            await self.authenticate()
        except ServiceError as err:
            return self.fail(err)
        data = []
        for m in self.svc.cfg.models:
            engine = self.svc.engines[m.name]
            data.append({"id": m.name, "object": "model", "created": 0, "owned_by": "donghaeng",
                         "engine": m.engine, "context_length": m.context_length, "max_model_len": m.context_length,
                         "completion_only": m.completion_only, "state": engine.state})
        self.send_json({"object": "list", "data": data})


class _EngineHandler(BaseHandler):
    """Shared by the endpoints that reach an engine: watch for the client going away."""

    _work: asyncio.Task | None = None

    def on_connection_close(self) -> None:
        if self._work and not self._work.done():
            self._work.cancel()

    def _client_gone(self) -> bool:
        """True when the client closed its connection (peek at the socket without reading)."""
        stream = self.request.connection.stream if self.request.connection else None
        if stream is None or stream.closed():
            return True
        try:
            return stream.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    async def _watch_disconnect(self) -> None:
        while True:
            await asyncio.sleep(DISCONNECT_POLL_S)
            if self._client_gone():
                if self._work and not self._work.done():
                    self._work.cancel()
                return

    async def run_cancellable(self, coro) -> bool:
        """Run *coro*; cancel it when the client goes away.  False when it was cancelled."""
        self._work = asyncio.ensure_future(coro)
        watcher = asyncio.ensure_future(self._watch_disconnect())
        try:
            await self._work
            return True
        except asyncio.CancelledError:
            if self._work.cancelled():
                return False
            raise
        finally:
            watcher.cancel()

    def engine_for(self, model: str) -> Engine:
        engine = self.svc.engines[model]
        if not engine.ready:
            if engine.state == MISSING:
                msg = E.MSG_ENGINE_MISSING if "binary" in engine.detail else E.MSG_MODEL_FILE_MISSING
                raise E.engine_down("engine_missing", msg)
            raise E.engine_down("engine_starting", E.MSG_ENGINE_STARTING)
        return engine


class TokenizeHandler(_EngineHandler):
    endpoint = "tokenize"

    async def post(self) -> None:
        try:
            await self.authenticate()
            data = parse_json(self.request.body, self.svc.cfg.service.max_request_bytes)
            unknown = sorted(set(data) - {"model", "prompt", "text", "add_special_tokens"})
            if unknown:
                raise ServiceError(400, E.MSG_UNKNOWN_PARAM.format(names=", ".join(unknown)),
                                   reason="unknown_param", param=unknown[0])
            model = data.get("model") or self.svc.default_model
            if model not in self.svc.engines:
                raise ServiceError(404, E.MSG_UNKNOWN_MODEL.format(model=model, known=", ".join(self.svc.engines)),
                                   type=E.NOT_FOUND, reason="model_not_found", param="model")
            text = data.get("prompt", data.get("text"))
            if not isinstance(text, str):
                raise E.bad_param("prompt", "글자(문자열)여야 해요")
            add_special = data.get("add_special_tokens", True)
            if not isinstance(add_special, bool):
                raise E.bad_param("add_special_tokens", "true 또는 false여야 해요")
            engine = self.engine_for(model)
            try:
                result = await engine.tokenize(text, add_special) if text else ([], [])
            except httpx.HTTPError as exc:
                log.warning("%s: tokenize failed: %s", model, exc)
                raise E.engine_down() from None
            if result is None:
                raise ServiceError(501, E.MSG_NO_TOKENIZE, type=E.INVALID, reason="tokenize_unsupported")
            ids, strs = result
            self.svc.metrics.requests.labels(model, self.endpoint, "200").inc()
            self.send_json({"model": model, "tokens": ids, "token_strs": strs, "count": len(ids),
                            "max_model_len": self.svc.cfg.models[list(self.svc.engines).index(model)].context_length})
        except ServiceError as err:
            self.svc.metrics.requests.labels(self.svc.default_model, self.endpoint, str(err.status)).inc()
            self.fail(err)


class GenerateHandler(_EngineHandler):
    """``/v1/completions`` and ``/v1/chat/completions``."""

    def initialize(self, svc: ModelService, kind: str) -> None:  # type: ignore[override]
        super().initialize(svc)
        self.kind = kind
        self.endpoint = kind
        self.user: User | None = None
        self.req: Request | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens = 0
        self.ttft: float | None = None
        self.queue_s: float | None = None
        self.status = 200
        self.reason: str | None = None

    async def post(self) -> None:
        svc = self.svc
        try:
            self.user = await self.authenticate()
            data = parse_json(self.request.body, svc.cfg.service.max_request_bytes)
            s = svc.cfg.service
            self.req = validate(data, self.kind, models=list(svc.engines), default_model=svc.default_model,
                                max_tokens_limit=s.max_tokens, default_max_tokens=s.default_max_tokens)
            entry = svc.cfg.models[list(svc.engines).index(self.req.model)]
            if self.kind == "chat" and entry.completion_only:
                raise ServiceError(400, E.MSG_COMPLETION_ONLY.format(model=entry.name), reason="completion_only",
                                   param="model")
            if self.req.max_tokens >= entry.context_length:
                raise E.bad_param("max_tokens", f"이 모델은 한 번에 토큰 {entry.context_length:,}개까지만 "
                                                "다뤄요. 더 작은 값을 써 주세요")
            engine = self.engine_for(self.req.model)
            completed = await self.run_cancellable(self._generate(engine))
            if not completed:
                self.status, self.reason = 499, "client_disconnected"
                svc.metrics.disconnects.labels(self.req.model).inc()
        except ServiceError as err:
            self.status, self.reason = err.status, err.reason
            if err.type == E.RATE:
                svc.metrics.rejected.labels(err.reason).inc()
            self.fail(err)
        finally:
            self._account()

    async def _generate(self, engine: Engine) -> None:
        svc, req, user = self.svc, self.req, self.user
        assert req and user
        deadline = self.t0 + svc.cfg.service.request_timeout
        ticket = await svc.scheduler.acquire(user.name, req.model, priority=user.priority,
                                             timeout=max(0.1, deadline - time.monotonic()))
        self.queue_s = ticket.queued_s
        svc.metrics.queue_wait.labels(req.model).observe(ticket.queued_s)
        svc.update_gauges()
        generation = engine.generation
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                if req.stream:
                    await self._stream(engine)
                else:
                    await self._once(engine)
        except TimeoutError:
            raise ServiceError(504, E.MSG_TIMEOUT.format(seconds=svc.cfg.service.request_timeout),
                               type=E.TIMEOUT, reason="timeout") from None
        except httpx.HTTPError as exc:
            log.warning("%s: engine request failed (%s: %s)", req.model, type(exc).__name__, exc)
            reason = "engine_crashed" if engine.generation != generation or not engine.ready else "engine_error"
            raise E.engine_down(reason) from None
        finally:
            svc.scheduler.release(ticket)
            svc.scheduler.charge(user.name, self.completion_tokens)
            svc.update_gauges()

    # -- building the upstream request ------------------------------------------------------
    def _payload(self, engine: Engine) -> dict[str, Any]:
        req = self.req
        assert req
        payload: dict[str, Any] = {"model": engine.upstream_model, "max_tokens": req.max_tokens,
                                   "stream": req.stream, **req.params}
        if req.kind == "completions":
            payload["prompt"] = req.prompt
        else:
            payload["messages"] = req.messages
        if engine.speaks_llama_cpp:
            if req.logprobs:
                payload["n_probs"] = req.logprobs
            if req.stream:
                payload["stream_options"] = {"include_usage": True}
        else:
            if req.logprobs:
                if req.kind == "completions":
                    payload["logprobs"] = req.logprobs
                else:
                    payload["logprobs"], payload["top_logprobs"] = True, req.logprobs
            if req.stream and req.include_usage:  # not every upstream knows stream_options
                payload["stream_options"] = {"include_usage": True}
        return payload

    def _adapt(self, engine: Engine, data: dict[str, Any], offsets: list[int]) -> dict[str, Any]:
        """Our model name; legacy OpenAI completions logprobs (with token ids) from llama-server's."""
        data["model"] = self.req.model if self.req else data.get("model")
        data.pop("system_fingerprint", None)
        if engine.speaks_llama_cpp and self.kind == "completions":
            for choice in data.get("choices") or []:
                lp = choice.get("logprobs")
                if isinstance(lp, dict) and isinstance(lp.get("content"), list):
                    choice["logprobs"] = legacy_logprobs(lp["content"], offsets)
        return data

    def _note_usage(self, data: dict[str, Any]) -> None:
        usage = data.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("prompt_tokens"), int):
                self.prompt_tokens = usage["prompt_tokens"]
            if isinstance(usage.get("completion_tokens"), int):
                self.completion_tokens = usage["completion_tokens"]

    async def _once(self, engine: Engine) -> None:
        path = engine.completions_path if self.kind == "completions" else engine.chat_path
        r = await engine.client.post(path, json=self._payload(engine))
        if r.status_code >= 400:
            raise upstream_error(r.status_code, r.content, self.svc.cfg.models[list(self.svc.engines).index(
                engine.name)].context_length)
        data = self._adapt(engine, r.json(), [0])
        self._note_usage(data)
        self.ttft = time.monotonic() - self.t0
        self.send_json(data)

    async def _stream(self, engine: Engine) -> None:
        path = engine.completions_path if self.kind == "completions" else engine.chat_path
        context_length = self.svc.cfg.models[list(self.svc.engines).index(engine.name)].context_length
        offsets = [0]
        streamed = 0
        async with engine.client.stream("POST", path, json=self._payload(engine)) as r:
            if r.status_code >= 400:
                raise upstream_error(r.status_code, await r.aread(), context_length)
            self.set_header("Content-Type", "text/event-stream; charset=utf-8")
            self.set_header("Cache-Control", "no-cache")
            self.set_header("X-Accel-Buffering", "no")
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                raw = line[5:].strip()
                if raw == "[DONE]":
                    break
                try:
                    data = json.loads(raw)
                except ValueError:
                    continue
                if "error" in data:
                    raise upstream_error(int((data["error"] or {}).get("code") or 500), raw.encode(), context_length)
                self._note_usage(data)
                choices = data.get("choices") or []
                has_text = any((c.get("text") or (c.get("delta") or {}).get("content")) for c in choices)
                if has_text:
                    streamed += 1
                    if self.ttft is None:
                        self.ttft = time.monotonic() - self.t0
                        self.svc.metrics.ttft.labels(engine.name).observe(self.ttft)
                if not choices and not self.req.include_usage:
                    continue  # the usage-only chunk we asked for ourselves
                self.write(b"data: " + json.dumps(self._adapt(engine, data, offsets), ensure_ascii=False).encode()
                           + b"\n\n")
                await self.flush()
        self.completion_tokens = max(self.completion_tokens, streamed)
        self.write(b"data: [DONE]\n\n")
        await self.flush()
        self.finish()

    def _account(self) -> None:
        svc, req, user = self.svc, self.req, self.user
        model = req.model if req else svc.default_model
        latency = time.monotonic() - self.t0
        svc.metrics.requests.labels(model, self.endpoint, str(self.status)).inc()
        svc.metrics.latency.labels(model, self.endpoint).observe(latency)
        if self.prompt_tokens:
            svc.metrics.tokens.labels(model, "prompt").inc(self.prompt_tokens)
        if self.completion_tokens:
            svc.metrics.tokens.labels(model, "completion").inc(self.completion_tokens)
        if user is None or req is None:
            return  # refused before we knew who or what: metrics only
        try:
            svc.usage.write(user=user.name, groups=user.groups, model=model, endpoint=self.endpoint,
                            status=self.status, prompt_tokens=self.prompt_tokens,
                            completion_tokens=self.completion_tokens, latency_s=latency, ttft_s=self.ttft,
                            queue_s=self.queue_s, stream=req.stream, reason=self.reason, prompt=req.text)
        except OSError as exc:
            log.error("could not write the usage log: %s", exc)


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        self.fail(ServiceError(404, E.MSG_NOT_FOUND, type=E.NOT_FOUND, reason="not_found"))


# ----------------------------------------------------------------------------------------------
# Translating engine output
# ----------------------------------------------------------------------------------------------


def _token_text(entry: dict[str, Any]) -> str:
    raw = entry.get("bytes")
    return piece_text(raw) if isinstance(raw, list) else str(entry.get("token", ""))


def legacy_logprobs(content: list[dict[str, Any]], offsets: list[int]) -> dict[str, Any]:
    """llama-server's per-token ``{"id", "token", "bytes", "logprob", "top_logprobs": [...]}`` list ->
    OpenAI's completions shape ``{"tokens", "token_logprobs", "top_logprobs", "text_offset"}``.

    ``top_logprobs[i]`` is OpenAI's ``{token: logprob}`` map, so the official SDKs parse it.  Two
    candidates with the same text collide in a map and token ids are lost, so the richer form rides
    along in the extension field :data:`TOP_LOGPROBS_DETAIL`: per position, a list of
    ``{"token", "logprob", "id"}`` best first (the lab's next-token widgets read it).
    *offsets* carries the running text offset across the chunks of one stream.
    """
    tokens, token_logprobs, top, detail, text_offset = [], [], [], [], []
    for e in content:
        text = _token_text(e)
        tokens.append(text)
        token_logprobs.append(e.get("logprob"))
        text_offset.append(offsets[0])
        offsets[0] += len(text)
        candidates = [{"token": _token_text(t), "logprob": t.get("logprob"), "id": t.get("id")}
                      for t in e.get("top_logprobs") or []]
        detail.append(candidates)
        best: dict[str, float] = {}
        for c in candidates:  # best first, so the first of equal texts wins
            best.setdefault(c["token"], c["logprob"])
        top.append(best)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": text_offset,
            TOP_LOGPROBS_DETAIL: detail}


def upstream_error(status: int, body: bytes, context_length: int) -> ServiceError:
    """An engine's error answer -> a Korean error for the learner."""
    try:
        err = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        err = {}
    if not isinstance(err, dict):
        err = {"message": str(err)}
    message = str(err.get("message") or body[:300].decode("utf-8", "replace"))
    etype = str(err.get("type") or "")
    if status < 500 and isinstance(err.get("reason"), str):  # already one of ours (the transformers worker)
        extra = {k: v for k, v in err.items() if k not in ("message", "type", "code", "reason")}
        return ServiceError(status, message, type=etype or E.INVALID, reason=err["reason"], **extra)
    if "context" in etype or "context" in message.lower() or "too long" in message.lower():
        n = err.get("n_prompt_tokens")
        return E.too_long(int(n) if isinstance(n, int) else None, int(err.get("n_ctx") or context_length))
    if status in (400, 422):
        return ServiceError(400, E.MSG_BAD_PARAM.format(param="요청", why=message[:300]), reason="engine_rejected")
    if status == 429 or status == 503:
        return E.engine_down("engine_busy", E.MSG_ENGINE_STARTING if "load" in message.lower() else E.MSG_ENGINE_DOWN)
    return ServiceError(502, E.MSG_UPSTREAM.format(detail=f"{status} {message[:200]}"), type=E.SERVER,
                        reason="engine_error")


# ----------------------------------------------------------------------------------------------
# Application
# ----------------------------------------------------------------------------------------------


def make_app(svc: ModelService) -> web.Application:
    p = svc.cfg.prefix.rstrip("/")
    args = {"svc": svc}
    return web.Application([
        (rf"{p}/?", IndexHandler, args),
        (rf"{p}/health", HealthHandler, args),
        (rf"{p}/v1/health", HealthHandler, args),
        (rf"{p}/metrics", MetricsHandler, args),
        (rf"{p}/v1/models", ModelsHandler, args),
        (rf"{p}/v1/completions", GenerateHandler, {"svc": svc, "kind": "completions"}),
        (rf"{p}/v1/chat/completions", GenerateHandler, {"svc": svc, "kind": "chat"}),
        (rf"{p}/v1/tokenize", TokenizeHandler, args),
        (rf"{p}/tokenize", TokenizeHandler, args),
    ], default_handler_class=NotFoundHandler, default_handler_args=args, log_function=_log_request)


def _log_request(handler: web.RequestHandler) -> None:
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING
    # The request line only: never the body (prompts) or headers (tokens).
    log.log(level, "%d %s %s %.0fms", status, handler.request.method, handler.request.path,
            1000 * handler.request.request_time())


def main() -> None:
    cfg = ServiceConfig.from_env()
    svc = ModelService(cfg)

    async def started() -> None:
        await svc.start()
        log.info("model service %s with %s", cfg.prefix, ", ".join(svc.engines))

    service_runtime.run("model", lambda: make_app(svc), level=os.environ.get("DONGHAENG_MODEL_LOG_LEVEL", "INFO"),
                        started=started, stopping=svc.stop, default_port=cfg.port, xheaders=True,
                        max_body_size=cfg.service.max_request_bytes * 4 + 65536, idle_connection_timeout=300)
