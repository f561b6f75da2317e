"""llama-server (GGUF) vs the transformers engine (the same model as a Hugging Face folder), one run.

One real lab whose model service runs both engines side by side: ``gguf`` (llama.cpp's server on the
packaged Gemma 3 270M Q4_K_M) and ``hf`` (``donghaeng.services.model.hfworker`` on that GGUF converted
by transformers to an HF folder, bf16 by default).  N simulated learners (hub accounts with tokens)
stream completions at once from one engine, then from the other (interleaved per N, so a change in
the machine's load hits both); we print aggregate tok/s, TTFT p50/p95 and each engine's RSS, and
the ratios transformers / llama-server.

Run as root from the repo:  /opt/donghaeng/venv/bin/python benchmarks/engines.py [--users 1 10]
                                 [--tokens 32] [--dtype bfloat16|float32]
Loopback only; bounded to a few minutes on an idle 2-core machine (much longer on a busy one).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import model_service as bench  # noqa: E402
from hubclient import HubUser  # noqa: E402
from labharness import running_lab  # noqa: E402

from donghaeng.services.model.hfconvert import convert_gguf  # noqa: E402
from donghaeng.common.settings import PACKAGED_MODEL  # noqa: E402

CACHE = Path("/var/tmp/donghaeng-hf")
ENGINES = ("gguf", "hf")  # catalogue order: engine-0 and engine-1


def settings(folder: Path, slots: int, threads: int | None) -> str:
    threads_line = f"threads = {threads}" if threads else ""
    return f"""
[model]
per_user_concurrency = 2
tokens_per_minute = 1000000
queue_size = 40
request_timeout = 900

[[models]]
name = "gguf"
path = "{PACKAGED_MODEL}"
context_length = 2048
parallel = {slots}
{threads_line}

[[models]]
name = "hf"
engine = "transformers"
path = "{folder}"
context_length = 2048
parallel = {slots}
{threads_line}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--tokens", type=int, default=32, help="tokens per answer")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--threads", type=int, help="CPU threads of each engine (default: all cores)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the lab creates system accounts)")
    bench.TOKENS, bench.ROUNDS = args.tokens, 1

    CACHE.mkdir(parents=True, exist_ok=True)
    CACHE.chmod(0o755)
    print(f"converting the packaged GGUF to an HF folder ({args.dtype}; cached) ...", flush=True)
    folder = convert_gguf(PACKAGED_MODEL, CACHE / f"gemma3-270m-{'bf16' if args.dtype == 'bfloat16' else 'fp32'}",
                          dtype=args.dtype)

    slots = max(args.users)
    people = {f"l{i}": ("학습자", "learner", "ai-basics") for i in range(slots)}
    rows: dict[tuple[str, int], dict] = {}
    with running_lab(people, extra_settings=settings(folder, slots, args.threads)) as lab:
        from donghaeng.hub.services import internal_ports

        base = f"http://127.0.0.1:{internal_ports(lab.settings)['model']}/services/model/v1"
        if not bench.wait_healthy(base, 600):
            sys.exit("the model service did not become ready")
        users = [HubUser.logged_in(lab, key) for key in people]
        for u in users:  # their Jupyter servers would compete for the CPU
            u.stop(timeout=180)
        tokens = [u.token for u in users]
        state = lab.settings.paths.root / "model"
        procs = {name: bench.service_processes(state, i)["engine"] for i, name in enumerate(ENGINES)}
        for name in ENGINES:  # warm-up: first-call allocations are not what a class sees
            bench.burst(base, tokens[:1], name)
        for n in args.users:
            for name in ENGINES:
                r = bench.burst(base, tokens[:n], name)
                rows[(name, n)] = r
                print(f"  {name:>4} {n:>2} users: {r['tok_s']:6.1f} tok/s   TTFT p50 {r['p50'] or 0:.2f} s  "
                      f"p95 {r['p95'] or 0:.2f} s   ({r['done']} answers, {len(r['errors'])} errors "
                      f"{r['errors'][:3]})", flush=True)
        rss = {name: bench.rss_of(pid) for name, pid in procs.items()}

    print(f"\nsummary (same machine, same run, same model; {args.tokens} tokens per answer, "
          f"{slots} slots each; hf = {args.dtype}; threads = {args.threads or 'all cores'})")
    print(f"  RSS: llama-server {rss['gguf'] / 2**20:.0f} MiB, transformers {rss['hf'] / 2**20:.0f} MiB "
          f"-> transformers / llama-server = {rss['hf'] / rss['gguf']:.1f}x")
    print(f"  {'users':>5} {'gguf tok/s':>10} {'hf tok/s':>9} {'hf÷gguf':>8} {'TTFT p50 gguf/hf':>17} "
          f"{'TTFT p95 gguf/hf':>17} {'p95 hf÷gguf':>11}")
    for n in args.users:
        g, h = rows[("gguf", n)], rows[("hf", n)]
        print(f"  {n:>5} {g['tok_s']:>10.1f} {h['tok_s']:>9.1f} {h['tok_s'] / g['tok_s']:>7.2f}x "
              f"{g['p50'] or 0:>8.2f}/{h['p50'] or 0:<8.2f} {g['p95'] or 0:>8.2f}/{h['p95'] or 0:<8.2f} "
              f"{(h['p95'] or 0) / (g['p95'] or 1):>10.1f}x")


if __name__ == "__main__":
    main()
