"""Sequential vs parallel autograde on real nbgrader, in sandboxed kernels (run as root).

    /opt/donghaeng/venv/bin/python benchmarks/autograde.py [--submissions 16] [--workers N]

Builds a throw-away course (grader account ``grader-sbx-…``) like tests/test_sandbox.py, submits a mix
of correct, partly wrong and failing notebooks, grades them all with ``CourseRunner.autograde`` once with
one worker and once with the pool, and prints both wall times, their ratio and whether every score
in the gradebook is the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_sandbox as t

MIX = [
    "def add(a, b):\n    return a + b",  # correct
    "def add(a, b):\n    return a - b",  # wrong
    "def add(a, b):\n    return a + b if a > 0 else 7",  # partly right: one assert fails
    "def add(a, b)\n    return a + b",  # syntax error
    "# 여기에 답을 써 주세요\nraise NotImplementedError()",  # untouched
    "import time\ntime.sleep(0.5)\ndef add(a, b):\n    return int(a) + int(b)",  # slow but correct
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: min(cpu_count, 4))")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the course grader is a system account", file=sys.stderr)
        return 2
    workers = args.workers or max(1, min(os.cpu_count() or 1, 4))
    with t.sandbox_course(workers) as runner:
        subs = {f"s{i:02d}": MIX[i % len(MIX)] for i in range(args.submissions)}
        t.submit(runner, subs)

        start = time.perf_counter()
        seq = runner.autograde(t.ASSIGNMENT, force=True, workers=1)
        seq_s = time.perf_counter() - start
        seq_scores = t.scores(runner)

        start = time.perf_counter()
        par = runner.autograde(t.ASSIGNMENT, force=True, workers=workers)
        par_s = time.perf_counter() - start
        par_scores = t.scores(runner)

        same = seq_scores == par_scores and seq.ok == par.ok and seq.failed.keys() == par.failed.keys()
        print(f"submissions: {len(subs)}  cpus: {os.cpu_count()}  workers: {workers}")
        print(f"sequential: {seq_s:.1f} s  ({seq_s / len(subs):.2f} s each)")
        print(f"parallel:   {par_s:.1f} s  ({par_s / len(subs):.2f} s each)")
        print(f"speed-up:   {seq_s / par_s:.2f}x")
        print(f"graded {len(par.ok)}, could not grade {len(par.failed)}; "
              f"total points {sum(par_scores.values()):g} of {2 * len(subs)}")
        print("identical scores:", "yes" if same else f"NO\n{seq_scores}\n{par_scores}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
