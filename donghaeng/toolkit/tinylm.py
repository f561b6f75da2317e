"""A tiny character-level Korean language model that trains on a CPU in seconds.

Learners use it (mostly through :func:`donghaeng.toolkit.widgets.trainer.tiny_trainer`) to watch what
"training" means: the loss goes down, and generated text goes from random syllables to words that
appear in the shipped corpus (``donghaeng/data/korean_corpus.txt``).

The model is an embedding, a one-layer GRU and a linear read-out over the corpus characters (plus an
``<unk>`` token for characters the corpus never uses). Everything is seeded: the same settings and seed
give the same losses and the same samples. A diverging run (NaN/inf loss, e.g. from a huge learning rate)
stops with :class:`TrainingUnstableError`, whose message tells the learner what to change, and the
model is rolled back to its last good weights so that sampling still works. "Diverged" means a
NaN/inf loss or one above ``explode_factor`` times the loss of a uniform guess: with Adam a huge
learning rate usually makes the loss explode (e.g. 25 at lr 1) rather than turn NaN.

Example::

    trainer = Trainer(TrainConfig(learning_rate=0.01, hidden_size=128))   # or Trainer(learning_rate=0.01)
    losses = trainer.train(300, on_step=lambda step, loss: print(step, loss))
    print(trainer.sample("안녕", length=40, temperature=0.8))
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

import torch
from torch import nn

__all__ = [
    "MODEL_SIZES",
    "MSG_UNSTABLE",
    "TrainConfig",
    "Trainer",
    "TrainingUnstableError",
    "TinyCharModel",
    "Vocab",
    "known_pair_share",
    "limit_torch_threads",
    "torch_threads",
    "load_corpus",
]

#: Shown to learners when the loss becomes NaN/inf or explodes.
MSG_UNSTABLE = "학습이 불안정해졌어요: 학습률을 낮춰 보세요."

UNK = "<unk>"

#: Learner-facing model sizes -> GRU hidden size.
MODEL_SIZES: dict[str, int] = {"작게": 64, "보통": 128, "크게": 192}


class TrainingUnstableError(RuntimeError):
    """The loss became NaN/inf or exploded. ``str(err)`` is :data:`MSG_UNSTABLE` (Korean)."""

    def __init__(self, step: int, loss: float, history: list[float]) -> None:
        super().__init__(MSG_UNSTABLE)
        self.step = step
        self.loss = loss
        self.history = history


@lru_cache(maxsize=1)
def load_corpus() -> str:
    """The Korean text shipped with the package."""
    path = resources.files("donghaeng") / "data" / "korean_corpus.txt"
    return path.read_text(encoding="utf-8")


def limit_torch_threads(limit: int = 2) -> int:
    """Cap torch's intra-op threads at ``min(limit, cpu count)`` so a lab machine is not starved.

    Never raises the current setting. Returns the thread count in effect.
    """
    cap = max(1, min(limit, os.cpu_count() or 1))
    if torch.get_num_threads() > cap:
        torch.set_num_threads(cap)
    return torch.get_num_threads()


@contextmanager
def torch_threads(count: int):
    """Run torch with at most *count* (and at most ``min(2, cpu count)``) threads, then restore.

    Restoring keeps other torch work in the same kernel (e.g. a later lesson) at its own setting.
    """
    previous = torch.get_num_threads()
    wanted = max(1, min(int(count), previous, os.cpu_count() or 1, 2))
    if wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def known_pair_share(text: str, corpus: str | None = None) -> float:
    """Share of the 2-character sequences of *text* that also occur in *corpus* (0.0 – 1.0).

    A rough "does it look like the corpus?" score: random syllables score low, real words high.
    Pairs that are only whitespace are ignored.
    """
    corpus = load_corpus() if corpus is None else corpus
    known = _pairs(corpus)
    pairs = [text[i : i + 2] for i in range(len(text) - 1)]
    pairs = [p for p in pairs if p.strip()]
    if not pairs:
        return 0.0
    return sum(p in known for p in pairs) / len(pairs)


@lru_cache(maxsize=4)
def _pairs(corpus: str) -> frozenset[str]:
    return frozenset(corpus[i : i + 2] for i in range(len(corpus) - 1))


class Vocab:
    """Characters of a corpus; index 0 is ``<unk>`` for anything the corpus never uses."""

    def __init__(self, text: str) -> None:
        self.itos: list[str] = [UNK, *sorted(set(text))]
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(self.itos)}
        self.unk_id = 0

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(ch, self.unk_id) for ch in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join("?" if i == self.unk_id else self.itos[i] for i in ids)


class TinyCharModel(nn.Module):
    """Embedding -> GRU -> linear read-out: next-character scores for every position."""

    def __init__(self, vocab_size: int, hidden_size: int, embed_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state: torch.Tensor | None = None):
        out, state = self.rnn(self.embed(ids), state)
        return self.head(out), state


@dataclass(frozen=True)
class TrainConfig:
    """The knobs. Defaults train in well under a minute on a 2-core CPU."""

    learning_rate: float = 0.01
    hidden_size: int = MODEL_SIZES["보통"]
    context_length: int = 32  # characters per training example
    steps: int = 300  # default for Trainer.train()
    temperature: float = 0.8  # default for Trainer.sample()
    embed_size: int = 32
    num_layers: int = 1
    batch_size: int = 32
    grad_clip: float = 1.0
    seed: int = 0
    #: Torch threads while training/sampling (capped at ``min(2, cpu count)``). One is the default on
    #: purpose: this model's ops are tiny, so a second thread gains ~15 % on an idle 2-core machine but
    #: every op then waits for a core that other learners' kernels are using; under load we measured
    #: ~20 ms/step with 1 thread against 110-600 ms/step with 2 (see benchmarks/tiny_trainer.py).
    num_threads: int = 1
    #: Loss above ``explode_factor * ln(vocab size)`` (a uniform guess) counts as diverged.
    explode_factor: float = 3.0

    def validate(self) -> None:
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0
                and math.isfinite(self.learning_rate)):
            raise ValueError("learning_rate must be a positive number")
        for name in ("hidden_size", "context_length", "embed_size", "num_layers", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.context_length < 2:
            raise ValueError("context_length must be at least 2")
        if self.steps < 0:
            raise ValueError("steps must not be negative")
        if self.num_threads < 1:
            raise ValueError("num_threads must be at least 1")


@dataclass
class _Snapshot:
    state: dict[str, torch.Tensor] = field(default_factory=dict)


class Trainer:
    """Trains a :class:`TinyCharModel` on a corpus and samples from it. Deterministic per seed."""

    def __init__(self, config: TrainConfig | None = None, corpus: str | None = None, **overrides) -> None:
        config = replace(config or TrainConfig(), **overrides)
        config.validate()
        self.config = config
        self.corpus = load_corpus() if corpus is None else corpus
        self.vocab = Vocab(self.corpus)
        self.data = torch.tensor(self.vocab.encode(self.corpus), dtype=torch.long)
        if len(self.data) < config.context_length + 2:
            raise ValueError("corpus is shorter than the context length")

        # Seed the weights without touching the global RNG that other notebook code may rely on.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = TinyCharModel(len(self.vocab), config.hidden_size, config.embed_size,
                                       config.num_layers)
        self.optimizer = self._new_optimizer()
        self._batch_gen = torch.Generator().manual_seed(config.seed)
        self.step = 0  # steps trained so far, over all train() calls
        self.history: list[float] = []  # loss of every step so far
        self.elapsed = 0.0  # seconds spent in train()
        self.unstable = False
        self._explode_at = config.explode_factor * math.log(len(self.vocab))

    # -- helpers ---------------------------------------------------------------------------------
    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _batch(self, generator: torch.Generator, batch_size: int | None = None):
        t = self.config.context_length
        n = batch_size or self.config.batch_size
        starts = torch.randint(0, len(self.data) - t - 1, (n,), generator=generator)
        offsets = torch.arange(t + 1)
        window = self.data[starts[:, None] + offsets]
        return window[:, :-1], window[:, 1:]

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits, _ = self.model(x)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def _sane(self, loss: float) -> bool:
        return math.isfinite(loss) and loss <= self._explode_at

    # -- public API ------------------------------------------------------------------------------
    def train(
        self,
        steps: int | None = None,
        on_step: Callable[[int, float], object] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[float]:
        """Train *steps* more steps (default ``config.steps``); return this call's losses.

        ``on_step(step, loss)`` is called after every step (``step`` counts from 1 over the trainer's
        life). ``should_stop()`` is polled before every step; when it returns true, training ends early
        and the losses so far are returned. A NaN/inf or exploding loss restores the last good weights
        and raises :class:`TrainingUnstableError` (message: :data:`MSG_UNSTABLE`).
        """
        steps = self.config.steps if steps is None else int(steps)
        if steps < 0:
            raise ValueError("steps must not be negative")
        losses: list[float] = []
        good = _Snapshot()
        self.model.train()
        started = time.perf_counter()
        # Set here, not at import: this may run in a widget's worker thread, and is restored after.
        with torch_threads(self.config.num_threads):
            try:
                self._train_loop(steps, on_step, should_stop, losses, good)
            finally:
                self.elapsed += time.perf_counter() - started
                self.model.eval()
        return losses

    def _train_loop(
        self,
        steps: int,
        on_step: Callable[[int, float], object] | None,
        should_stop: Callable[[], bool] | None,
        losses: list[float],
        good: _Snapshot,
    ) -> None:
        for _ in range(steps):
            if should_stop is not None and should_stop():
                break
            x, y = self._batch(self._batch_gen)
            loss = self._loss(x, y)
            value = float(loss.detach())
            if not self._sane(value):
                self._roll_back(good)
                self.unstable = True
                raise TrainingUnstableError(self.step + 1, value, list(losses))
            # These weights produced a sane loss: keep them in case the next update breaks them.
            good.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.step += 1
            losses.append(value)
            self.history.append(value)
            if on_step is not None:
                on_step(self.step, value)

    def _roll_back(self, good: _Snapshot) -> None:
        if good.state:
            self.model.load_state_dict(good.state)
        self.optimizer = self._new_optimizer()  # Adam moments may be NaN too

    @torch.no_grad()
    def evaluate(self, batches: int = 8, seed: int = 1234) -> float:
        """Average loss on a fixed set of random windows (same windows every call): a steady score."""
        gen = torch.Generator().manual_seed(seed)
        was_training = self.model.training
        self.model.eval()
        total = 0.0
        with torch_threads(self.config.num_threads):
            for _ in range(batches):
                x, y = self._batch(gen, batch_size=64)
                total += float(self._loss(x, y))
        self.model.train(was_training)
        return total / batches

    @torch.no_grad()
    def sample(
        self,
        prompt: str = "",
        length: int = 60,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> str:
        """*prompt* followed by *length* generated characters.

        ``temperature`` (default ``config.temperature``): low = safe and repetitive, high = adventurous;
        0 or less always picks the most likely character. ``seed`` defaults to the config seed, so the
        same call gives the same text; pass different seeds for different texts.
        Characters the corpus never uses are read as ``<unk>`` in the prompt and never generated.
        """
        temperature = self.config.temperature if temperature is None else float(temperature)
        length = max(0, int(length))
        gen = torch.Generator().manual_seed(self.config.seed if seed is None else int(seed))
        with torch_threads(self.config.num_threads):
            return prompt + self.vocab.decode(self._generate(prompt, length, temperature, gen))

    def _generate(self, prompt: str, length: int, temperature: float, gen: torch.Generator) -> list[int]:
        was_training = self.model.training
        self.model.eval()
        try:
            # An empty prompt starts like a new line of the corpus.
            context = self.vocab.encode(prompt) if prompt else self.vocab.encode("\n")
            logits, state = self.model(torch.tensor([context], dtype=torch.long))
            last = logits[0, -1]
            out: list[int] = []
            for _ in range(length):
                last = last.clone()
                last[self.vocab.unk_id] = -math.inf
                if not torch.isfinite(last).any():
                    raise TrainingUnstableError(self.step, math.nan, list(self.history))
                if temperature <= 0:
                    nxt = int(torch.argmax(last))
                else:
                    probs = torch.softmax(last / temperature, dim=-1)
                    probs = torch.nan_to_num(probs, nan=0.0)
                    if float(probs.sum()) <= 0:
                        nxt = int(torch.argmax(last))
                    else:
                        nxt = int(torch.multinomial(probs, 1, generator=gen))
                out.append(nxt)
                logits, state = self.model(torch.tensor([[nxt]], dtype=torch.long), state)
                last = logits[0, -1]
        finally:
            self.model.train(was_training)
        return out
