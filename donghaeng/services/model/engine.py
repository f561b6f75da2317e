"""Engines behind the service: a supervised llama.cpp ``llama-server``, a supervised transformers
worker (:mod:`.hfworker`, same API as llama-server) for Hugging Face model folders, or an external
OpenAI-compatible server (vLLM, Ollama, ...) that the service only proxies.

The supervised engines listen on a Unix socket inside the service's private folder (mode 0700), so
learners on the same machine cannot reach it around the service's authentication and limits.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from donghaeng.common.settings import ModelEntry
from donghaeng.services.model.metrics import Metrics

log = logging.getLogger("donghaeng.services.model.engine")

HEALTH_INTERVAL_S = 5.0
HEALTH_FAILURES_BEFORE_KILL = 6   # an engine that stops answering /health for ~30 s is restarted
LOAD_TIMEOUT_S = 300.0
MAX_BACKOFF_S = 30.0
PROMPT_CACHE_MIB = 256
ENGINE_LOG_MAX_BYTES = 20_000_000

# States an engine reports in /health and /v1/models.
STARTING, READY, RESTARTING, MISSING, STOPPED = "starting", "ready", "restarting", "missing", "stopped"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the engine never outlives the service


class Engine:
    """What the request handlers need from an engine."""

    kind = "engine"
    speaks_llama_cpp = False   # llama-server's request/response dialect (n_probs, logprobs.content)

    def __init__(self, entry: ModelEntry, metrics: Metrics) -> None:
        self.entry = entry
        self.name = entry.name
        self.metrics = metrics
        self.state = STARTING
        self.detail = ""           # why the engine is not ready (for admins, in /health)
        self.restarts = 0
        self.generation = 0        # bumped at every (re)start: in-flight requests can tell
        self.client: httpx.AsyncClient

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def upstream_model(self) -> str:
        return self.entry.upstream_model or self.entry.name

    # endpoint paths on self.client
    completions_path = "/v1/completions"
    chat_path = "/v1/chat/completions"

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        await self.client.aclose()

    async def tokenize(self, text: str, add_special: bool) -> tuple[list[int], list[str]] | None:
        """Token ids and their text pieces, or None when the engine cannot tokenize."""
        raise NotImplementedError

    async def kill(self) -> bool:
        """Kill the engine process (tests, watchdog); False when there is none."""
        return False


def piece_text(piece) -> str:
    """llama-server's piece (text, or a list of byte values when not valid UTF-8) -> text;
    bytes that are not text become ``<0xNN>`` like SentencePiece's byte-fallback pieces."""
    if isinstance(piece, str):
        return piece
    if isinstance(piece, list):
        raw = bytes(int(b) & 0xFF for b in piece)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(f"<0x{b:02X}>" for b in raw)
    return str(piece)


class LlamaServerEngine(Engine):
    """llama.cpp's server on a GGUF file, started and restarted by the service."""

    kind = "llama-server"
    speaks_llama_cpp = True

    def __init__(self, entry: ModelEntry, metrics: Metrics, *, binary: Path, run_dir: Path,
                 index: int) -> None:
        super().__init__(entry, metrics)
        self.binary = binary
        self.socket = run_dir / f"engine-{index}.sock"
        self.log_path = run_dir.parent / f"engine-{entry.name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        slots = entry.parallel
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)),
            base_url="http://llama-server",
            timeout=httpx.Timeout(None, connect=5.0),
            limits=httpx.Limits(max_connections=slots * 4 + 16, max_keepalive_connections=slots * 2 + 8),
            trust_env=False,
        )
        self._health = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)), base_url="http://llama-server",
            timeout=5.0, trust_env=False)

    def command(self) -> list[str]:
        e = self.entry
        cmd = [
            str(self.binary),
            "--model", str(e.path),
            "--alias", e.name,
            "--host", str(self.socket),          # a path ending in .sock: a Unix socket
            "--parallel", str(e.parallel),
            "--ctx-size", str(e.context_length * e.parallel),  # split evenly: one window per slot
            "--no-webui",
            "--cache-ram", str(PROMPT_CACHE_MIB),  # llama.cpp's default keeps up to 8 GiB of old prompts
        ]
        if e.threads:
            cmd += ["--threads", str(e.threads)]
        if not e.completion_only:
            cmd += ["--jinja"]                   # use the GGUF's own chat template
        return cmd

    def missing(self) -> str | None:
        """Why the engine cannot start (for /health), or None."""
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            return f"engine binary not found: {self.binary} (run ./lab up to build it)"
        if not (self.entry.path and Path(self.entry.path).is_file()):
            return f"model file not found: {self.entry.path}"
        return None

    def environment(self) -> dict[str, str] | None:
        """The engine's environment; None: the service's own."""
        return None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"engine-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self.state = STOPPED
        await self._health.aclose()
        await super().stop()

    async def kill(self) -> bool:
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            return True
        return False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state, self.detail = state, detail
        self.metrics.engine_up.labels(self.name).set(1 if state == READY else 0)

    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping:
            missing = self.missing()
            if missing:
                self._set_state(MISSING, missing)
                log.error("%s: %s", self.name, missing)
                await asyncio.sleep(MAX_BACKOFF_S)
                continue
            started = time.monotonic()
            await self._run_once()
            if self._stopping:
                break
            self.restarts += 1
            self.metrics.engine_restarts.labels(self.name).inc()
            if time.monotonic() - started > 60:
                backoff = 1.0
            log.warning("%s: engine exited (code %s); restarting in %.0f s",
                        self.name, self.proc.returncode if self.proc else "?", backoff)
            self._set_state(RESTARTING, "engine exited; restarting")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _run_once(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.generation += 1
        self._set_state(STARTING if self.generation == 1 else RESTARTING, "loading the model")
        cmd = self.command()
        log.info("%s: starting %s", self.name, " ".join(cmd))
        if self.log_path.exists() and self.log_path.stat().st_size > ENGINE_LOG_MAX_BYTES:
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        with open(self.log_path, "ab", buffering=0) as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start #{self.generation}\n".encode())
            self.proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=_die_with_parent,
                env=self.environment())
        proc = self.proc
        watchdog = asyncio.create_task(self._watch(proc))
        try:
            await proc.wait()
        finally:
            watchdog.cancel()
            self._set_state(RESTARTING, "engine exited")

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Mark the engine ready once /health answers; kill it when it stops answering."""
        loaded_by = time.monotonic() + LOAD_TIMEOUT_S
        while proc.returncode is None:
            try:
                r = await self._health.get("/health")
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                break
            if time.monotonic() > loaded_by:
                log.error("%s: engine did not load within %.0f s; killing it", self.name, LOAD_TIMEOUT_S)
                proc.kill()
                return
            await asyncio.sleep(0.2)
        if proc.returncode is not None:
            return
        self._set_state(READY)
        log.info("%s: engine ready (pid %s, start #%d)", self.name, proc.pid, self.generation)
        failures = 0
        while proc.returncode is None:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            try:
                r = await self._health.get("/health")
                failures = 0 if r.status_code == 200 else failures + 1
            except httpx.HTTPError:
                failures += 1
            if failures >= HEALTH_FAILURES_BEFORE_KILL:
                log.error("%s: engine stopped answering /health; killing it", self.name)
                proc.kill()
                return

    async def tokenize(self, text: str, add_special: bool) -> tuple[list[int], list[str]] | None:
        r = await self.client.post("/tokenize", json={"content": text, "add_special": add_special,
                                                      "with_pieces": True})
        r.raise_for_status()
        items = r.json().get("tokens", [])
        ids = [int(t["id"]) for t in items]
        pieces = [piece_text(t.get("piece", "")) for t in items]
        return ids, pieces


class TransformersEngine(LlamaServerEngine):
    """A Hugging Face model folder run by :mod:`.hfworker` (transformers ``generate``), supervised
    exactly like llama-server and answering the same API on its private Unix socket."""

    kind = "transformers"

    def __init__(self, entry: ModelEntry, metrics: Metrics, *, run_dir: Path, index: int) -> None:
        super().__init__(entry, metrics, binary=Path(sys.executable), run_dir=run_dir, index=index)

    def command(self) -> list[str]:
        e = self.entry
        cmd = [sys.executable, "-m", "donghaeng.services.model.hfworker", "--model", str(e.path),
               "--socket", str(self.socket), "--name", e.name, "--parallel", str(e.parallel),
               "--context", str(e.context_length)]
        return cmd + (["--threads", str(e.threads)] if e.threads else [])

    def missing(self) -> str | None:
        folder = Path(self.entry.path or "")
        if not (folder / "config.json").is_file():
            return f"model folder not found or without config.json: {folder}"
        return None

    def environment(self) -> dict[str, str]:
        # Never reach a model hub.  OpenMP's busy-waiting made torch several times slower on a
        # CPU shared with other work (as in donghaeng.toolkit.model_client); passive waiting avoids it.
        return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "OMP_WAIT_POLICY": "PASSIVE"}


class OpenAIEngine(Engine):
    """An OpenAI-compatible server run by someone else; the service adds auth, limits and logs."""

    kind = "openai"
    completions_path = "/completions"
    chat_path = "/chat/completions"

    def __init__(self, entry: ModelEntry, metrics: Metrics) -> None:
        super().__init__(entry, metrics)
        headers = {"Authorization": f"Bearer {entry.api_key}"} if entry.api_key else {}
        base = (entry.url or "").rstrip("/")
        self.root = base[: -len("/v1")] if base.endswith("/v1") else base
        self.client = httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(None, connect=10.0),
                                        limits=httpx.Limits(max_connections=entry.parallel * 4 + 16),
                                        trust_env=False)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._probe(), name=f"engine-{self.name}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self.state = STOPPED
        await super().stop()

    async def _probe(self) -> None:
        """Check every few seconds that the upstream answers /models."""
        while True:
            try:
                r = await self.client.get("/models", timeout=5.0)
                ok = r.status_code == 200
                detail = "" if ok else f"upstream /models answered {r.status_code}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"upstream unreachable: {type(exc).__name__}"
            if ok and self.state != READY:
                self.generation += 1
            self.state, self.detail = (READY, "") if ok else (RESTARTING, detail)
            self.metrics.engine_up.labels(self.name).set(1 if ok else 0)
            await asyncio.sleep(HEALTH_INTERVAL_S if ok else 2.0)

    async def tokenize(self, text: str, add_special: bool) -> tuple[list[int], list[str]] | None:
        # vLLM: POST /tokenize at the server root.  Others (Ollama) have none.
        try:
            r = await self.client.post(f"{self.root}/tokenize", json={
                "model": self.upstream_model, "prompt": text, "add_special_tokens": add_special,
                "return_token_strs": True})
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        data = r.json()
        ids = [int(i) for i in data.get("tokens", [])]
        strs = data.get("token_strs")
        if not isinstance(strs, list) or len(strs) != len(ids):
            strs = [f"<#{i}>" for i in ids]
        return ids, [str(s) for s in strs]
