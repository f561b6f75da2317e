"""Measure the in-kernel model path on this machine's CPU (a script, not a test).

    /opt/donghaeng/venv/bin/python benchmarks/in_kernel_model.py [--runs 3] [--threads N]

Reports: load time and memory; for ``complete()`` (greedy, 64 tokens, a Korean and an English
prompt) the time to first streamed piece and tokens/s; ``next_tokens()`` latency; and, in the
same process on the same weights, a baseline without our client (raw ``model.generate`` and a raw
forward pass), with the ratio client/baseline.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from donghaeng.toolkit.model_client import InKernelClient  # noqa: E402

PROMPTS = {
    "한국어": "회의 자료를 메일로 보내는 방법을 설명해 드릴게요.",
    "English": "Here is how to send the meeting materials by email.",
}
MAX_TOKENS = 64


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    current = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def time_client_complete(client: InKernelClient, prompt: str) -> tuple[float, float, int]:
    """(seconds to first piece, total seconds, tokens generated)."""
    start = time.perf_counter()
    first = None
    for _piece in client.complete(prompt, temperature=0, max_tokens=MAX_TOKENS):
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first or total, total, client.last_completion_tokens


def time_raw_generate(model, tokenizer, prompt: str, max_new: int) -> tuple[float, int]:
    import torch

    enc = tokenizer(prompt, return_tensors="pt")
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=max_new, do_sample=False)
    return time.perf_counter() - start, int(out.shape[1] - enc["input_ids"].shape[1])


def time_raw_next(model, tokenizer, prompt: str, top_k: int = 10) -> float:
    import torch

    start = time.perf_counter()
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**enc).logits[0, -1]
    probs = torch.softmax(logits.float(), dim=-1)
    values, ids = torch.topk(probs, top_k)
    tokenizer.convert_ids_to_tokens(ids.tolist())
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the client's choice)")
    args = parser.parse_args()

    print(f"CPU: {os.cpu_count()} cores visible, load average {os.getloadavg()[0]:.2f} at start")
    client = InKernelClient(threads=args.threads)

    # torch is imported by the client first, as in a learner's kernel (it sets OpenMP defaults).
    start = time.perf_counter()
    client.tokenize("안녕하세요")
    tokenizer_s = time.perf_counter() - start
    import torch

    tok_rss = rss_mib()
    # Weights alone (the tokenizer is already in memory, so this is one GGUF parse + de-quantise).
    start = time.perf_counter()
    model = client.model
    weights_s = time.perf_counter() - start
    cur, peak = rss_mib()
    tokenizer = client.tokenizer
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; model {client.model_path.name}")
    print(f"load: tokenizer {tokenizer_s:.1f} s (RSS {tok_rss[0]:.0f} MiB), weights {weights_s:.1f} s; "
          f"cold start total {tokenizer_s + weights_s:.1f} s")
    print(f"memory after load: RSS {cur:.0f} MiB, peak {peak:.0f} MiB")

    # Warm-up (first generate call allocates caches); not counted.
    list(client.complete("warm up", temperature=0, max_tokens=4))
    time_raw_generate(model, tokenizer, "warm up", 4)

    # Client and baseline runs alternate so both see the same background load on a shared CPU.
    rows = []
    for label, prompt in PROMPTS.items():
        ttft, total, base_first, base_total = [], [], [], []
        ntok = base_tok = 0
        for _ in range(args.runs):
            first, secs, ntok = time_client_complete(client, prompt)
            ttft.append(first)
            total.append(secs)
            base_first.append(time_raw_generate(model, tokenizer, prompt, 1)[0])
            secs, base_tok = time_raw_generate(model, tokenizer, prompt, MAX_TOKENS)
            base_total.append(secs)
        rows.append((label, median(ttft), ntok / median(total), ntok, median(base_first), base_tok / median(base_total), base_tok))

    client_next, raw_next = [], []
    for _ in range(max(5, args.runs)):
        start = time.perf_counter()
        client.next_tokens(PROMPTS["한국어"], top_k=10)
        client_next.append(time.perf_counter() - start)
        raw_next.append(time_raw_next(model, tokenizer, PROMPTS["한국어"]))

    print()
    print(f"complete(): greedy, max {MAX_TOKENS} tokens, median of {args.runs} runs")
    header = f"{'prompt':<8} | {'client TTFT':>11} | {'raw TTFT':>8} | {'client tok/s':>12} | {'raw tok/s':>9} | {'tok/s ratio':>11} | tokens"
    print(header)
    print("-" * len(header))
    for label, ttft, tps, ntok, bttft, btps, btok in rows:
        print(f"{label:<8} | {ttft:>9.2f} s | {bttft:>6.2f} s | {tps:>12.1f} | {btps:>9.1f} | {tps / btps:>11.2f} | {ntok}/{btok}")
    print()
    nt, rn = median(client_next), median(raw_next)
    print(f"next_tokens(top_k=10): client {nt * 1000:.0f} ms, raw forward+softmax {rn * 1000:.0f} ms, ratio {nt / rn:.2f}")
    print("(raw TTFT = model.generate(max_new_tokens=1); client TTFT = first streamed text piece, which "
          "the streamer releases at a word boundary, so it can include a few tokens)")
    print(f"load average {os.getloadavg()[0]:.2f} at end (over {os.cpu_count()} cores: numbers are noisy on a busy machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
