"""Stand-ins for the model client in widget tests (the real model is tested in test_model_client,
test_model_service and the slow playground tests): one scripted model, and one that must not be touched."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from donghaeng.toolkit.model_client import ModelClient, Token, TokenProb

Candidates = Sequence[TokenProb] | Callable[[str], Sequence[TokenProb]]


class ScriptedClient(ModelClient):
    """A deterministic :class:`~donghaeng.toolkit.model_client.ModelClient`.

    * ``complete``/``chat`` stream *pieces*, or the pieces of the first *by_prompt* key found in the prompt;
    * ``next_tokens`` returns *candidates* (a list, or a function of the prompt), best first, cut to ``top_k``;
    * ``tokenize`` gives one token per character;
    * every generating call is recorded in :attr:`calls` (a dict of its arguments, ``prompt`` or ``messages``);
    * *fail* is raised at piece *fail_after* of a stream, *fail_on_call* makes the n-th call (1-based) raise
      it at once, *tokenize_fail* is raised by ``tokenize``; *on_piece* sees each piece's index as it streams.
    """

    name = "scripted"

    def __init__(self, pieces: Sequence[str] = ("안녕", "하세요", "! 반가", "워요."), *,
                 by_prompt: dict[str, Sequence[str]] | None = None, candidates: Candidates | None = None,
                 context_length: int = 400, kind: str = "base", fail: Exception | None = None, fail_after: int = 0,
                 fail_on_call: int | None = None, tokenize_fail: Exception | None = None,
                 on_piece: Callable[[int], None] | None = None) -> None:
        self.pieces = list(pieces)
        self.by_prompt = dict(by_prompt or {})
        self.candidates = candidates
        self.context_length = context_length
        self.kind = kind
        self.fail, self.fail_after, self.fail_on_call = fail, fail_after, fail_on_call
        self.tokenize_fail = tokenize_fail
        self.on_piece = on_piece
        self.calls: list[dict] = []

    def _record(self, **call: object) -> None:
        self.calls.append(call)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call and self.fail is not None:
            raise self.fail

    def tokenize(self, text: str) -> list[Token]:
        if self.tokenize_fail:
            raise self.tokenize_fail
        return [Token(i, ch) for i, ch in enumerate(text)]

    def complete(self, prompt, *, temperature=0.7, top_p=0.95, max_tokens=64, stop=None) -> Iterator[str]:
        self._record(prompt=prompt, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop)
        return self._stream(prompt)

    def chat(self, messages, *, temperature=0.7, top_p=0.95, max_tokens=64) -> Iterator[str]:
        self._record(messages=messages, temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        return self._stream(messages[-1]["content"])

    def next_tokens(self, prompt: str, *, top_k: int = 10, temperature: float = 1.0) -> list[TokenProb]:
        if self.candidates is None:
            raise AssertionError("this test scripted no next-token candidates")
        self._record(prompt=prompt, top_k=top_k, temperature=temperature)
        found = self.candidates(prompt) if callable(self.candidates) else self.candidates
        return list(found)[:top_k]

    def _stream(self, prompt: str) -> Iterator[str]:
        pieces = next((p for key, p in self.by_prompt.items() if key in prompt), self.pieces)
        for i, piece in enumerate(pieces):
            if self.fail is not None and self.fail_on_call is None and i == self.fail_after:
                raise self.fail
            if self.on_piece:
                self.on_piece(i)
            yield piece


class ExplodingClient:
    """Any use of the model fails the test: proves nothing touches it before a button is pressed."""

    name = "never"
    context_length = 10

    def __getattribute__(self, item):
        if item in ("tokenize", "complete", "next_tokens", "chat"):
            raise AssertionError(f"model used before the button was pressed: {item}")
        return object.__getattribute__(self, item)
