"""Spawn time of a learner's server on the embedded (local-process) lab.

Baseline: one spawn at a time (median of REPEATS) in this same run.  Then CONCURRENT learners press
"start" together, as at the beginning of a class; we print p50/p95 and their ratio to the baseline.
Run as root from the repo:  /opt/donghaeng/venv/bin/python benchmarks/spawn.py
"""

from __future__ import annotations

import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hubclient import HubUser  # noqa: E402
from labharness import running_lab  # noqa: E402

REPEATS = 3
CONCURRENT = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    people = {f"l{i}": ("학습자", "learner", "ai-basics") for i in range(CONCURRENT)}
    with running_lab(people) as lab:
        users = [HubUser.logged_in(lab, key) for key in people]  # first login also creates accounts
        for user in users:
            user.stop()
        first = users[0]
        single = []
        for _ in range(REPEATS):
            single.append(first.spawn())
            first.stop()
        with ThreadPoolExecutor(CONCURRENT) as pool:
            burst = list(pool.map(lambda u: u.spawn(), users))
    base = statistics.median(single)
    print(f"single spawn (baseline)      median {base:6.2f} s  over {REPEATS}")
    print(f"{CONCURRENT} spawns at once            p50 {percentile(burst, .5):6.2f} s  "
          f"p95 {percentile(burst, .95):6.2f} s  ratio p95/baseline {percentile(burst, .95) / base:5.1f}x")


if __name__ == "__main__":
    main()
