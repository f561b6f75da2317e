"""Training time of the tiny trainer with the default settings, against a plain loop in the same process.

Baseline: the same model, batches and optimizer driven by a bare torch loop (no loss checks, no weight
snapshots, no callbacks). Then ``Trainer.train()`` (loss checks + roll-back snapshots), then the widget's
whole run as a learner gets it (``background=False`` click: 3 checkpoint samples + live plot redraws).
Each is run REPEAT times, interleaved, and the median is printed with steps/s and the ratio to baseline.

    /opt/donghaeng/venv/bin/python benchmarks/tiny_trainer.py [--repeat 3] [--threads 1] [--compare-threads]

``--compare-threads`` also times the baseline with 1 and 2 torch threads: on a busy shared machine the
2-thread run can be many times slower (see TrainConfig.num_threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from donghaeng.toolkit import tinylm  # noqa: E402
from donghaeng.toolkit.widgets.trainer import tiny_trainer  # noqa: E402


def plain_loop(config: tinylm.TrainConfig) -> float:
    trainer = tinylm.Trainer(config)  # only for the seeded model, data and batch generator
    model, data_gen = trainer.model, trainer._batch_gen
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    model.train()
    with tinylm.torch_threads(config.num_threads):
        started = time.perf_counter()
        for _ in range(config.steps):
            x, y = trainer._batch(data_gen)
            logits, _ = model(x)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        return time.perf_counter() - started


def trainer_train(config: tinylm.TrainConfig) -> float:
    trainer = tinylm.Trainer(config)
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def widget_run(config: tinylm.TrainConfig) -> float:
    widget = tiny_trainer(background=False)
    assert widget.steps.value == config.steps and widget.learning_rate.value == config.learning_rate
    started = time.perf_counter()
    widget.start_button.click()
    elapsed = time.perf_counter() - started
    if not widget.message.startswith("학습을 마쳤어요"):
        raise SystemExit(f"widget run did not finish: {widget.message}")
    widget_run.last = widget  # type: ignore[attr-defined]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=tinylm.TrainConfig().num_threads)
    parser.add_argument("--compare-threads", action="store_true")
    args = parser.parse_args()

    config = tinylm.TrainConfig(num_threads=args.threads)
    steps = config.steps
    print(f"cpu cores {os.cpu_count()}, torch threads used {min(args.threads, torch.get_num_threads())}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"default settings: lr {config.learning_rate}, hidden {config.hidden_size}, context "
          f"{config.context_length}, batch {config.batch_size}, {steps} steps, "
          f"{tinylm.Trainer(config).num_parameters:,} parameters")

    tinylm.Trainer(config).train(5)  # warm up torch's kernels once, as any earlier cell would
    runs: dict[str, list[float]] = {"plain loop (baseline)": [], "Trainer.train()": [], "widget click": []}
    for _ in range(args.repeat):
        runs["plain loop (baseline)"].append(plain_loop(config))
        runs["Trainer.train()"].append(trainer_train(config))
        runs["widget click"].append(widget_run(config))

    base = statistics.median(runs["plain loop (baseline)"])
    for name, times in runs.items():
        t = statistics.median(times)
        print(f"{name:24s} median {t:6.2f} s  {steps / t:6.1f} steps/s  ratio {t / base:5.2f}x  "
              f"(runs: {', '.join(f'{x:.2f}' for x in times)})")

    widget = widget_run.last  # type: ignore[attr-defined]
    history = widget.trainer.history
    print(f"widget: {widget.plot_count} plot redraws; loss {history[0]:.3f} -> {sum(history[-20:]) / 20:.3f} "
          f"(mean of last 20 steps)")
    for label, text in widget.samples.items():
        print(f"  {label}: {text!r}")

    if args.compare_threads:
        for threads in (1, 2):
            t = plain_loop(tinylm.TrainConfig(num_threads=threads))
            print(f"plain loop, {threads} torch thread(s): {t:6.2f} s  {steps / t:6.1f} steps/s  "
                  f"(load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
