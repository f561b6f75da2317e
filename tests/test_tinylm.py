"""donghaeng.toolkit.tinylm: the tiny Korean character model learns, is deterministic and fails kindly."""

from __future__ import annotations

import fnmatch
import math
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import torch

from donghaeng.toolkit import tinylm
from donghaeng.toolkit.tinylm import (
    MSG_UNSTABLE,
    TrainConfig,
    Trainer,
    TrainingUnstableError,
    Vocab,
    known_pair_share,
    load_corpus,
)

REPO = Path(__file__).resolve().parent.parent
PROMPT = "안녕"
SAMPLE_SEEDS = range(4)


def samples(trainer: Trainer, length: int = 60) -> list[str]:
    return [trainer.sample(PROMPT, length, seed=s) for s in SAMPLE_SEEDS]


def pair_share(texts: list[str]) -> float:
    return sum(known_pair_share(t[len(PROMPT):]) for t in texts) / len(texts)


@pytest.fixture(scope="module")
def trained():
    """One run with the default settings and default number of steps (a few seconds on 2 cores)."""
    trainer = Trainer()
    before = {"eval": trainer.evaluate(), "samples": samples(trainer)}
    losses = trainer.train()
    return trainer, before, losses


# ------------------------------------------------------------------------------------------- corpus
def test_corpus_is_shipped_korean_and_repetitive():
    path = resources.files("donghaeng") / "data" / "korean_corpus.txt"
    raw = path.read_bytes()
    assert 15_000 <= len(raw) <= 30_000
    text = raw.decode("utf-8")
    assert text == load_corpus()
    letters = [ch for ch in text if not ch.isspace()]
    hangul = [ch for ch in letters if "가" <= ch <= "힣"]
    assert len(hangul) / len(letters) > 0.8
    for phrase, at_least in [("안녕하세요", 5), ("감사합니다", 10), ("시에 시작해요", 8), ("알려 드립니다", 5)]:
        assert text.count(phrase) >= at_least, phrase


def test_corpus_is_package_data_in_pyproject():
    """Wheels must carry the corpus: pyproject's package-data has to match data/korean_corpus.txt."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"].get("package-data", {}).get("donghaeng", [])
    assert any(fnmatch.fnmatch("data/korean_corpus.txt", p) for p in patterns), (
        'add "data/*.txt" to [tool.setuptools.package-data] donghaeng'
    )


def test_vocab_has_unk_for_unseen_characters():
    vocab = Vocab("가나다")
    assert len(vocab) == 4 and vocab.itos[0] == tinylm.UNK
    assert vocab.encode("가X다") == [1, 0, 3]
    assert vocab.decode(vocab.encode("나다")) == "나다"


# ----------------------------------------------------------------------------------------- training
def test_default_training_lowers_the_loss_substantially(trained):
    trainer, before, losses = trained
    assert len(losses) == TrainConfig().steps == trainer.step == len(trainer.history)
    first, last = losses[0], sum(losses[-20:]) / 20
    assert first == pytest.approx(math.log(len(trainer.vocab)), rel=0.1), "starts near a uniform guess"
    assert last < 0.6 * first
    assert trainer.evaluate() < 0.6 * before["eval"]


def test_samples_after_training_contain_more_corpus_words(trained):
    trainer, before, _ = trained
    after = samples(trainer)
    share_before, share_after = pair_share(before["samples"]), pair_share(after)
    assert share_before < 0.3, before["samples"]
    assert share_after > 0.8, after
    assert share_after > share_before + 0.5
    assert any(word in "".join(after) for word in ("세요", "감사합니다", "시에", "주세요", "오늘"))


def test_same_seed_same_result_and_seed_matters():
    def run(seed: int):
        trainer = Trainer(seed=seed)
        losses = trainer.train(25)
        return losses, trainer.sample(PROMPT, 30)

    first = run(0)
    assert run(0) == first
    assert run(1)[0] != first[0]


def test_training_leaves_global_rng_and_thread_setting_alone():
    """Training uses 1 torch thread but restores the kernel's own setting afterwards."""
    rng = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    seen = []
    trainer = Trainer()
    trainer.train(3, on_step=lambda step, loss: seen.append(torch.get_num_threads()))
    trainer.sample(PROMPT, 5)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    assert seen and set(seen) == {1}, "trains on one torch thread (TrainConfig.num_threads)"


def test_on_step_and_should_stop():
    calls = []
    trainer = Trainer()
    losses = trainer.train(50, on_step=lambda step, loss: calls.append((step, loss)),
                           should_stop=lambda: len(calls) >= 7)
    assert [step for step, _ in calls] == list(range(1, 8))
    assert losses == [loss for _, loss in calls]
    assert trainer.step == 7
    trainer.train(3)  # training continues where it stopped
    assert trainer.step == 10 and len(trainer.history) == 10


@pytest.mark.parametrize("learning_rate", [10.0, 1000.0])
def test_huge_learning_rate_gives_the_korean_message(learning_rate):
    trainer = Trainer(learning_rate=learning_rate)
    with pytest.raises(TrainingUnstableError) as caught:
        trainer.train(100)
    assert str(caught.value) == MSG_UNSTABLE == "학습이 불안정해졌어요: 학습률을 낮춰 보세요."
    assert caught.value.step < 100
    assert trainer.unstable
    # Weights were rolled back to the last good ones: the model still produces text.
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert trainer.sample(PROMPT, 10).startswith(PROMPT)


def test_nan_loss_is_detected():
    trainer = Trainer()
    trainer.train(2)
    with torch.no_grad():
        trainer.model.head.bias.fill_(math.nan)
    with pytest.raises(TrainingUnstableError) as caught:
        trainer.train(5)
    assert math.isnan(caught.value.loss)
    assert trainer.step == 2


# ----------------------------------------------------------------------------------------- sampling
def test_sample_shape_and_characters():
    trainer = Trainer()
    text = trainer.sample("안녕🙂", 25, temperature=1.0)
    assert text.startswith("안녕🙂") and len(text) == len("안녕🙂") + 25
    assert set(text[3:]) <= set(trainer.vocab.itos[1:]), "never generates <unk>"
    assert len(trainer.sample("", 10)) == 10
    assert trainer.sample(PROMPT, 0) == PROMPT


def test_temperature_zero_is_greedy_and_seed_independent():
    trainer = Trainer()
    trainer.train(20)
    assert trainer.sample(PROMPT, 20, temperature=0, seed=1) == trainer.sample(PROMPT, 20, temperature=0, seed=2)
    assert trainer.sample(PROMPT, 20, seed=1) == trainer.sample(PROMPT, 20, seed=1)


def test_knobs_are_validated():
    with pytest.raises(ValueError):
        Trainer(learning_rate=0)
    with pytest.raises(ValueError):
        Trainer(context_length=1)
    with pytest.raises(ValueError):
        Trainer(corpus="짧아요", context_length=32)
    small = Trainer(hidden_size=tinylm.MODEL_SIZES["작게"], context_length=8)
    big = Trainer(hidden_size=tinylm.MODEL_SIZES["크게"])
    assert small.num_parameters < Trainer().num_parameters < big.num_parameters
    assert len(small.train(3)) == 3


def test_known_pair_share():
    assert known_pair_share("안녕하세요", "안녕하세요. 감사합니다.") == 1.0
    assert known_pair_share("뷁뷁", "안녕하세요") == 0.0
    assert known_pair_share("  ", "안녕") == 0.0
