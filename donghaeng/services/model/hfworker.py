"""The ``transformers`` engine: a Hugging Face model folder behind the same small HTTP API that the
service expects from llama.cpp's ``llama-server``, so the service treats both engines alike.

Why not ``transformers serve``?  In transformers 5.23 it needs fastapi/uvicorn/openai (not lab
dependencies), ignores ``logprobs``/``top_logprobs`` (listed as unsupported fields), has no tokenize
endpoint and listens only on TCP.  The lab's widgets need all three, and the engine must sit on a
private Unix socket.  So this worker runs transformers' own ``generate`` and speaks llama-server's
dialect:

* ``GET /health`` (the socket opens only once the model is loaded)
* ``POST /tokenize`` ``{"content", "add_special", "with_pieces"}`` -> ``{"tokens": [{"id", "piece"}]}``
* ``POST /v1/completions`` and ``/v1/chat/completions`` with llama-server's ``n_probs``: each choice's
  ``logprobs.content`` is a list of ``{"id", "token", "bytes", "logprob", "top_logprobs"}``; streams end
  with a usage chunk when ``stream_options.include_usage`` is set.

The service has already checked and limited every request; errors here use the service's own
error objects.  Up to ``--parallel`` generations run at once, each in a thread (torch releases the
GIL); a client that goes away stops its generation at the next token.

    python -m donghaeng.services.model.hfworker --model DIR --socket PATH --name NAME [--parallel N]
        [--context N] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_unix_socket

from donghaeng.services.model import errors as E
from donghaeng.services.model.errors import ServiceError
from donghaeng.services.model.validate import parse_json

log = logging.getLogger("donghaeng.services.model.hfworker")

BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
MAX_BODY = 8_000_000
# llama.cpp's sampling defaults, so both engines answer the same request alike.
DEFAULTS = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05}


class Worker:
    """The loaded model and tokenizer, and the threads that run ``generate``."""

    def __init__(self, folder: Path, *, name: str, parallel: int, context: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.name = name
        self.context = context
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype="auto").eval()
        self.pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="generate")
        self.pieces: dict[int, str] = {}
        eos = self.model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

    def piece(self, token_id: int) -> str:
        """A token's own text; a byte-fallback token stays ``<0xNN>`` (as llama-server and the lab show it)."""
        text = self.pieces.get(token_id)
        if text is None:
            raw = self.tokenizer.convert_ids_to_tokens(token_id)
            text = raw if BYTE_PIECE.match(raw) else self.tokenizer.convert_tokens_to_string([raw])
            self.pieces[token_id] = text
        return text

    def token_entry(self, token_id: int, logprob: float) -> dict[str, Any]:
        text = self.piece(token_id)
        byte = BYTE_PIECE.match(text)
        raw = [int(byte.group(1), 16)] if byte else list(text.encode())
        return {"id": token_id, "token": text, "bytes": raw, "logprob": logprob}

    def encode(self, body: dict[str, Any], chat: bool) -> list[int]:
        if not chat:
            return self.tokenizer(body["prompt"])["input_ids"]
        if not self.tokenizer.chat_template:
            raise ServiceError(400, E.MSG_COMPLETION_ONLY.format(model=self.name), reason="completion_only",
                               param="model")
        text = self.tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class Generation:
    """One request's generate() call: token ids (and their logprobs) flow to the handler's loop."""

    worker: Worker
    ids: list[int]
    body: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """In a pool thread: ``model.generate`` with a streamer and, when asked, logprob recording."""
        from transformers import (
            GenerationConfig,
            LogitsProcessor,
            LogitsProcessorList,
            StoppingCriteria,
            StoppingCriteriaList,
        )
        from transformers.generation.streamers import BaseStreamer

        torch, b, gen = self.worker.torch, self.body, self
        n_probs = int(b.get("n_probs") or 0)
        last: list[Any] = [None]

        class Penalties(LogitsProcessor):  # OpenAI's presence/frequency penalties (not in transformers)
            def __call__(self, input_ids, scores):
                counts = torch.bincount(input_ids[0, len(gen.ids):], minlength=scores.shape[-1])[: scores.shape[-1]]
                scores[0] -= b.get("frequency_penalty", 0) * counts + b.get("presence_penalty", 0) * (counts > 0)
                return scores

        class Record(LogitsProcessor):  # the distribution before temperature / top-k / top-p
            def __call__(self, input_ids, scores):
                last[0] = torch.log_softmax(scores[0].float(), dim=-1)
                return scores

        class Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), gen.cancelled.is_set(), dtype=torch.bool)

        class Streamer(BaseStreamer):
            prompt_seen = False

            def put(self, value):
                if not self.prompt_seen:  # generate() first hands over the prompt
                    self.prompt_seen = True
                    return
                for token in value.flatten().tolist():
                    top = None
                    if n_probs and last[0] is not None:
                        values, indices = torch.topk(last[0], n_probs)
                        top = (float(last[0][token]), list(zip(indices.tolist(), values.tolist())))
                    gen.loop.call_soon_threadsafe(gen.queue.put_nowait, (token, top))

            def end(self):
                gen.loop.call_soon_threadsafe(gen.queue.put_nowait, None)

        temperature = b.get("temperature", DEFAULTS["temperature"])
        sampling = {"do_sample": True, "temperature": temperature, "top_k": b.get("top_k", DEFAULTS["top_k"]) or None,
                    "top_p": b.get("top_p", DEFAULTS["top_p"]), "min_p": b.get("min_p", DEFAULTS["min_p"]) or None}
        config = GenerationConfig(
            max_new_tokens=b["max_new_tokens"], **(sampling if temperature > 0 else {"do_sample": False}),
            repetition_penalty=b.get("repeat_penalty") or None,
            min_new_tokens=b["max_new_tokens"] if b.get("ignore_eos") else None,
            eos_token_id=sorted(self.worker.eos) or None,
            pad_token_id=self.worker.tokenizer.pad_token_id)
        processors = LogitsProcessorList()
        if b.get("presence_penalty") or b.get("frequency_penalty"):
            processors.append(Penalties())
        if n_probs:
            processors.append(Record())
        try:
            with torch.inference_mode():
                if b.get("seed") is not None:  # torch's one global generator: reproducible when run alone
                    torch.manual_seed(int(b["seed"]) & 0xFFFF_FFFF)
                self.worker.model.generate(
                    input_ids=torch.tensor([self.ids]), attention_mask=torch.ones(1, len(self.ids), dtype=torch.long),
                    generation_config=config, logits_processor=processors,
                    stopping_criteria=StoppingCriteriaList([Cancel()]), streamer=Streamer())
        except Exception as exc:  # reported to the client; the worker stays up
            log.exception("generate failed")
            self.loop.call_soon_threadsafe(self.queue.put_nowait, exc)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, None)


class Handler(web.RequestHandler):
    def initialize(self, worker: Worker) -> None:
        self.worker = worker

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")

    def check_xsrf_cookie(self) -> None:
        return

    def fail(self, err: ServiceError) -> None:
        if self._headers_written:
            self.write(err.sse())
            self.finish()
            return
        self.clear()
        self.set_status(err.status)
        self.finish(json.dumps(err.body(), ensure_ascii=False))


class HealthHandler(Handler):
    def get(self) -> None:
        self.finish({"status": "ok"})


class TokenizeHandler(Handler):
    def post(self) -> None:
        try:
            data = parse_json(self.request.body, MAX_BODY)
        except ServiceError as err:
            return self.fail(err)
        ids = self.worker.tokenizer(str(data.get("content", "")),
                                    add_special_tokens=bool(data.get("add_special", True)))["input_ids"]
        self.finish(json.dumps({"tokens": [{"id": i, "piece": self.worker.piece(i)} for i in ids]},
                               ensure_ascii=False))


class GenerateHandler(Handler):
    def initialize(self, worker: Worker, chat: bool) -> None:  # type: ignore[override]
        super().initialize(worker)
        self.chat = chat
        self.gen: Generation | None = None

    def on_connection_close(self) -> None:
        if self.gen:
            self.gen.cancelled.set()

    async def post(self) -> None:
        try:
            await self._post()
        except ServiceError as err:
            self.fail(err)
        except StreamClosedError:
            pass
        finally:
            if self.gen:
                self.gen.cancelled.set()

    async def _post(self) -> None:
        w = self.worker
        body = parse_json(self.request.body, MAX_BODY)
        ids = w.encode(body, self.chat)
        room = w.context - len(ids)
        if room <= 0:
            raise E.too_long(len(ids), w.context)
        body["max_new_tokens"] = max(1, min(int(body.get("max_tokens") or 16), room))
        stops = [s for s in body.get("stop") or [] if s]
        stream = bool(body.get("stream"))
        self.gen = gen = Generation(w, ids, body, asyncio.get_running_loop())
        w.pool.submit(gen.run)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        kind = "chat.completion" if self.chat else "text_completion"
        n_probs = int(body.get("n_probs") or 0)
        tokens: list[int] = []
        text, sent, finish = "", 0, "length"
        holdback = max((len(s) for s in stops), default=1) - 1

        def choice(piece: str, logprobs: list | None, reason: str | None) -> dict[str, Any]:
            out: dict[str, Any] = {"index": 0, "finish_reason": reason,
                                   "logprobs": {"content": logprobs} if logprobs is not None else None}
            if not self.chat:
                out["text"] = piece
            elif stream:
                out["delta"] = {"content": piece} if piece else {}
            else:
                out["message"] = {"role": "assistant", "content": piece}
            return out

        def chunk(choices: list, **extra: Any) -> None:
            obj = {"id": rid, "object": kind + (".chunk" if self.chat else ""), "created": created,
                   "model": w.name, "choices": choices, **extra}
            self.write(b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n")

        if stream:
            self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        pending: list[dict[str, Any]] = []   # logprob entries not yet sent
        while (item := await gen.queue.get()) is not None:
            if isinstance(item, Exception):
                raise ServiceError(500, E.MSG_UPSTREAM.format(detail=type(item).__name__), type=E.SERVER,
                                   reason="engine_error")
            token, top = item
            if token in w.eos:
                finish = "stop"
                continue
            tokens.append(token)
            if top is not None:
                pending.append({**w.token_entry(token, top[0]),
                                "top_logprobs": [w.token_entry(i, lp) for i, lp in top[1]]})
            text = w.tokenizer.decode(tokens, skip_special_tokens=True)
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
                break
            if not stream or text.endswith("\ufffd"):
                continue  # half a character: wait for the rest
            ready = len(text) - holdback if stops else len(text)
            if ready > sent or pending:
                chunk([choice(text[sent:ready], pending if n_probs else None, None)])
                await self.flush()
                sent, pending = max(sent, ready), []
        gen.cancelled.set()
        usage = {"prompt_tokens": len(ids), "completion_tokens": len(tokens),
                 "total_tokens": len(ids) + len(tokens)}
        if not stream:
            self.finish(json.dumps({"id": rid, "object": kind, "created": created, "model": w.name,
                                    "choices": [choice(text, pending if n_probs else None, finish)],
                                    "usage": usage}, ensure_ascii=False))
            return
        chunk([choice(text[sent:], pending if n_probs else None, finish)])
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk([], usage=usage)
        self.write(b"data: [DONE]\n\n")
        self.finish()


def make_app(worker: Worker) -> web.Application:
    args = {"worker": worker}
    return web.Application([
        (r"/health", HealthHandler, args),
        (r"/tokenize", TokenizeHandler, args),
        (r"/v1/completions", GenerateHandler, {**args, "chat": False}),
        (r"/v1/chat/completions", GenerateHandler, {**args, "chat": True}),
    ])


async def serve(args: argparse.Namespace) -> None:
    worker = Worker(args.model, name=args.name, parallel=args.parallel, context=args.context)
    server = HTTPServer(make_app(worker), max_body_size=MAX_BODY)
    server.add_socket(bind_unix_socket(str(args.socket), mode=0o600))
    log.info("%s: serving %s on %s", args.name, args.model, args.socket)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
