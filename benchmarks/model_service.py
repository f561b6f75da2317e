"""Shared model service vs a model in every kernel, on this machine, in one run.

Baseline: what a learner's kernel does without the service (``donghaeng.toolkit.model_client.InKernelClient``:
transformers + torch load the packaged GGUF de-quantised on the CPU), in a child process like a kernel:
load time, memory (RSS), time to first token and tokens/s for one learner.  N kernels would need N
copies of that memory and share the same CPUs.

Service: a real lab (hub + proxy + the ``model`` service running llama.cpp's server with the lab's
default limits).  N simulated learners (each their own hub account and token) send ROUNDS streamed
completions of TOKENS tokens each, all at once; we report aggregate tokens/s and TTFT p50/p95.

Run as root from the repo:  /opt/donghaeng/venv/bin/python benchmarks/model_service.py [--quick]
                                 [--parallel 30 --context 4096]   (engine slots; default lab.toml's)
Loopback only; bounded to a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import labharness  # noqa: E402
from hubclient import HubUser  # noqa: E402
from labharness import running_lab  # noqa: E402

LEARNERS = (1, 5, 10, 30)
TOKENS = 64
ROUNDS = 2
PROMPT = "오늘 수업에서는 인공지능이 글을 쓰는 방법을 배워요. 언어 모델은"
CALL_TIMEOUT = 180.0

BASELINE = textwrap.dedent(f"""
    import json, time, resource
    t0 = time.monotonic()
    from donghaeng.toolkit.model_client import InKernelClient
    c = InKernelClient()
    c.next_tokens("안녕", top_k=1)                # loads tokenizer + weights, like a learner's first click
    load = time.monotonic() - t0
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    prompt = {PROMPT!r}
    runs = []
    for _ in range({ROUNDS}):
        start = time.monotonic(); first = None; text = ""
        for piece in c.complete(prompt, max_tokens={TOKENS}, temperature=0.8):
            if first is None and piece:
                first = time.monotonic() - start
            text += piece
        total = time.monotonic() - start
        n = len(c.tokenize(prompt + text)) - len(c.tokenize(prompt))
        runs.append({{"ttft": first, "seconds": total, "tokens": n}})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({{"load_s": load, "rss": rss(), "peak": peak, "runs": runs}}))
""")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
    return 0


def service_processes(state: Path, index: int = 0) -> dict[str, int]:
    """pid of the *index*-th engine of this lab and of its parent (the service)."""
    sock = str(state / "run" / f"engine-{index}.sock")
    out = subprocess.run(["pgrep", "-f", sock], capture_output=True, text=True).stdout.split()
    engine = int(out[0])
    status = Path(f"/proc/{engine}/status").read_text()
    parent = int(next(ln for ln in status.splitlines() if ln.startswith("PPid")).split()[1])
    return {"engine": engine, "service": parent}


def wait_healthy(base: str, timeout: float) -> bool:
    """Wait until every engine of the service at *base* (``.../v1``) is ready; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base[:-3]}/health", timeout=3, trust_env=False).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def baseline() -> dict:
    env = {**os.environ, "DONGHAENG_MODEL_URL": ""}
    out = subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    data = json.loads(out.stdout.strip().splitlines()[-1])
    runs = data["runs"]
    data["tok_s"] = sum(r["tokens"] for r in runs) / sum(r["seconds"] for r in runs)
    data["ttft"] = statistics.median(r["ttft"] for r in runs)
    return data


def one_learner(base: str, token: str, results: list, errors: list, model: str | None = None) -> None:
    headers = {"Authorization": f"token {token}"}
    body = {"prompt": PROMPT, "max_tokens": TOKENS, "temperature": 0.8, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}, **({"model": model} if model else {})}
    with httpx.Client(timeout=CALL_TIMEOUT, trust_env=False) as client:
        for _ in range(ROUNDS):
            start = time.monotonic()
            first, tokens = None, 0
            try:
                with client.stream("POST", f"{base}/completions", json=body, headers=headers) as r:
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.read()[:200]!r}")
                        continue
                    for line in r.iter_lines():
                        if not line.startswith("data:") or line.endswith("[DONE]"):
                            continue
                        chunk = json.loads(line[5:])
                        if "error" in chunk:
                            errors.append(chunk["error"].get("reason"))
                            break
                        if first is None and any(c.get("text") for c in chunk.get("choices") or []):
                            first = time.monotonic() - start
                        if chunk.get("usage"):
                            tokens = chunk["usage"]["completion_tokens"]
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            results.append({"ttft": first, "tokens": tokens, "end": time.monotonic()})


def burst(base: str, tokens: list[str], model: str | None = None) -> dict:
    """All *tokens* (learners) stream ROUNDS completions at once from *model* (default: the first)."""
    results: list = []
    errors: list = []
    threads = [threading.Thread(target=one_learner, args=(base, t, results, errors, model)) for t in tokens]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(CALL_TIMEOUT * ROUNDS)
    wall = max((r["end"] for r in results), default=time.monotonic()) - start
    ttfts = [r["ttft"] for r in results if r["ttft"] is not None]
    return {"tok_s": sum(r["tokens"] for r in results) / wall, "p50": percentile(ttfts, .5) if ttfts else None,
            "p95": percentile(ttfts, .95) if ttfts else None, "done": len(results), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 and 5 learners only, one round")
    parser.add_argument("--parallel", type=int, help="engine slots (default: lab.toml's default, 10)")
    parser.add_argument("--context", type=int, default=8192, help="context per slot with --parallel")
    args = parser.parse_args()
    if args.parallel:  # the lab the harness writes gets this catalogue instead of the default
        labharness.COURSES += (f'\n[[models]]\nname = "gemma3-270m"\npath = "/opt/donghaeng/models/'
                               f'gemma3-270m-q4_k_m.gguf"\nparallel = {args.parallel}\n'
                               f'context_length = {args.context}\n')
    global ROUNDS
    learners = LEARNERS
    if args.quick:
        learners, ROUNDS = (1, 5), 1
    if os.geteuid() != 0:
        sys.exit("run as root (the lab creates system accounts)")

    print(f"baseline: in-kernel transformers, 1 learner, {ROUNDS}x{TOKENS} tokens ...", flush=True)
    b = baseline()
    print(f"  load {b['load_s']:.1f} s   RSS {b['rss'] / 2**20:.0f} MiB (peak {b['peak'] / 2**20:.0f} MiB)   "
          f"TTFT {b['ttft']:.2f} s   {b['tok_s']:.1f} tok/s", flush=True)

    people = {f"l{i}": ("학습자", "learner", "ai-basics") for i in range(max(learners))}
    with running_lab(people) as lab:
        from donghaeng.hub.services import internal_ports

        base = f"http://127.0.0.1:{internal_ports(lab.settings)['model']}/services/model/v1"
        wait_healthy(base, 180)
        print(f"service: logging in {len(people)} learners ...", flush=True)
        users = [HubUser.logged_in(lab, key) for key in people]
        tokens = [u.token for u in users]
        # The first login also starts each learner's Jupyter server; stop them so that 30 servers
        # starting up do not compete with the model for the CPU while we measure.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda u: u.stop(timeout=180), users))
        time.sleep(5)
        procs = service_processes(lab.settings.paths.root / "model")
        rows = []
        for n in learners:
            r = burst(base, tokens[:n])
            rows.append((n, r))
            print(f"  {n:>2} learners: {r['tok_s']:6.1f} tok/s aggregate   TTFT p50 {r['p50']:.2f} s  "
                  f"p95 {r['p95']:.2f} s   ({r['done']} answers, {len(r['errors'])} errors {r['errors'][:3]})",
                  flush=True)
        mem = {k: rss_of(pid) for k, pid in procs.items()}
    service_mem = sum(mem.values())

    slots = f"{args.parallel} slots x {args.context} tokens" if args.parallel else "lab.toml defaults"
    print(f"\nsummary (same machine, same run; engine: {slots})")
    print(f"  in-kernel baseline: {b['tok_s']:.1f} tok/s for 1 learner, TTFT {b['ttft']:.2f} s, "
          f"{b['rss'] / 2**20:.0f} MiB per kernel, {b['load_s']:.0f} s to load")
    print(f"  service memory: llama-server {mem['engine'] / 2**20:.0f} MiB + service {mem['service'] / 2**20:.0f} MiB"
          f" = {service_mem / 2**20:.0f} MiB, whatever the number of learners")
    print(f"  {'N':>3} {'service tok/s':>14} {'÷ 1 kernel':>11} {'TTFT p50':>9} {'TTFT p95':>9} "
          f"{'N kernels RAM':>14} {'÷ service RAM':>14}")
    for n, r in rows:
        kernels = n * b["rss"]
        print(f"  {n:>3} {r['tok_s']:>14.1f} {r['tok_s'] / b['tok_s']:>10.1f}x {r['p50']:>8.2f}s {r['p95']:>8.2f}s "
              f"{kernels / 2**30:>12.1f}GiB {kernels / service_mem:>13.1f}x")
    print("  (N kernels share the same CPUs, so together they make at most the baseline's tok/s.)")


if __name__ == "__main__":
    main()
