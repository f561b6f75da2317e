"""The autograde pipeline against plain nbgrader, on 30 submissions of one assignment (run as root).

    /opt/donghaeng/venv/bin/python benchmarks/autograde.py [--submissions 30] [--hostile 8] [--workers N]
                                                           [--sandbox process|docker|auto] [--repeat 3]

One throw-away course (grader account ``grader-sbx-…``, like tests/test_sandbox.py) gets a mix of
correct, partly wrong and failing notebooks plus hostile ones (endless loop, fork bomb, memory bomb,
flood of output, network, /etc/shadow, ``rm -rf ~``, a file that is not a notebook).  In the same run:

1. **plain**: one ``nbgrader autograde`` process, no sandbox, over the non-hostile submissions only
   (hostile code must not run unsandboxed on a shared machine);
2. **pipeline, same set**: ``CourseRunner.autograde`` (pre-checks, sandboxed kernels, worker pool,
   reasons) over the same non-hostile submissions;
3. **pipeline, all**: ``CourseRunner.autograde`` over every submission, hostile ones included.

Steps 1 and 2 alternate ``--repeat`` times (default 3) so that a load spike on the machine hits both
sides; the medians are printed.  Prints the wall times, the ratio plain / pipeline on the same set,
and whether every non-hostile score is identical between plain nbgrader and the pipeline (exit 1 if
not).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
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
NOT_A_NOTEBOOK = "badjson"


# nbgrader's own default Autograde.autograde_preprocessors (stock Execute: no sandbox, no two-phase checks)
STOCK_PREPROCESSORS = [f"--Autograde.autograde_preprocessors={cls}" for cls in (
    "nbgrader.preprocessors.Execute", "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata")]


def timed(run) -> tuple[float, object]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--hostile", type=int, default=8, help="how many of them are hostile (at most 8)")
    parser.add_argument("--workers", type=int, default=None,
                        help="pool size (default: the lab's, min(2 x cpu_count, [autograde] workers = 4))")
    parser.add_argument("--sandbox", choices=("process", "docker", "auto"), default="process")
    parser.add_argument("--repeat", type=int, default=3, help="alternating plain/pipeline runs (median)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the course grader is a system account", file=sys.stderr)
        return 2
    hostile_names = [*t.HOSTILE, NOT_A_NOTEBOOK][:min(args.hostile, len(t.HOSTILE) + 1)]
    normal = {f"s{i:02d}": MIX[i % len(MIX)] for i in range(args.submissions - len(hostile_names))}
    with t.sandbox_course(4, sandbox=args.sandbox) as runner:
        workers = args.workers or runner.workers()
        t.submit(runner, {**normal, **{name: t.HOSTILE.get(name, MIX[0]) for name in hostile_names}})
        if NOT_A_NOTEBOOK in hostile_names:
            (runner.root / "submitted" / NOT_A_NOTEBOOK / t.ASSIGNMENT / f"{t.NOTEBOOK}.ipynb").write_text("{")

        exclude = f"--CourseDirectory.student_id_exclude={','.join(hostile_names)}"
        parked = Path(tempfile.mkdtemp(prefix="donghaeng-parked-", dir="/var/tmp"))
        plain_times, same_times = [], []
        for _ in range(args.repeat):  # alternating, so a load spike on the machine hits both sides
            # 1. plain nbgrader: one process, no sandbox, the non-hostile submissions
            plain_s, plain = timed(lambda: runner.nbgrader("autograde", t.ASSIGNMENT, "--force", exclude,
                                                           *STOCK_PREPROCESSORS))
            if plain.returncode != 0:
                print(plain.stdout + plain.stderr, file=sys.stderr)
                return 1
            plain_times.append(plain_s)
            plain_scores = {s: v for s, v in t.scores(runner).items() if s in normal}

            # 2. the pipeline on the same set (hostile folders parked outside the course meanwhile)
            for name in hostile_names:
                shutil.move(runner.root / "submitted" / name, parked / name)
            same_s, _ = timed(lambda: runner.autograde(t.ASSIGNMENT, force=True, workers=workers))
            same_times.append(same_s)
            same_scores = {s: v for s, v in t.scores(runner).items() if s in normal}
            for name in hostile_names:
                shutil.move(parked / name, runner.root / "submitted" / name)
        parked.rmdir()
        plain_s, same_s = statistics.median(plain_times), statistics.median(same_times)
        ratios = [p / q for p, q in zip(plain_times, same_times)]

        # 3. the pipeline on everything
        all_s, result = timed(lambda: runner.autograde(t.ASSIGNMENT, force=True, workers=workers))
        all_scores = t.scores(runner)

        identical = plain_scores == same_scores == {s: all_scores[s] for s in normal}
        hostile_zero = all(result.outcomes[s].score == 0 and result.outcomes[s].reasons for s in hostile_names)
        n, h = len(normal), len(hostile_names)
        print(f"cpus: {os.cpu_count()}  workers: {workers}  sandbox: {args.sandbox}  "
              f"submissions: {n + h} ({n} non-hostile, {h} hostile)  cell timeout: "
              f"{runner.settings.autograde.timeout} s")
        print(f"medians of {args.repeat} alternating runs:")
        print(f"plain nbgrader, 1 process, no sandbox, {n} non-hostile: {plain_s:6.1f} s ({plain_s / n:.2f} s each)")
        print(f"pipeline, same {n} non-hostile:                       {same_s:6.1f} s ({same_s / n:.2f} s each)")
        print(f"pipeline, all {n + h} incl. hostile:                     {all_s:6.1f} s ({all_s / (n + h):.2f} s each)")
        print(f"ratio plain / pipeline on the same set: {statistics.median(ratios):.2f}x median of "
              f"{args.repeat} ({', '.join(f'{r:.2f}' for r in ratios)}; >1: the pipeline is faster)")
        print(f"non-hostile scores identical (plain, pipeline same set, pipeline all): {'yes' if identical else 'NO'}")
        print(f"every hostile submission zero with a reason: {'yes' if hostile_zero else 'NO'}")
        for name in hostile_names:
            print(f"  {name:9s} {result.outcomes[name].status:8s} {'; '.join(result.outcomes[name].reasons)}")
        if not identical:
            print(plain_scores, same_scores, all_scores, sep="\n")
        return 0 if identical and hostile_zero else 1


if __name__ == "__main__":
    sys.exit(main())
