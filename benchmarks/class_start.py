"""Class start: N learners at once, cold (servers started by the burst) and warm (prepared before class).

Baseline: one cold spawn in this same run (median of three).  Then for each N: *cold* — N servers
requested at once (the hub's queue starts ``spawn_concurrency`` at a time); *warm* — the servers are
prepared (as ``donghaeng class prepare`` or the scheduled class start does), and N learners log in
together until their server answers: first as on the first day (initial password, then a password
of their own), then as on any later day.  Prints p50/p95, failures and the ratio p95/baseline; in
docker mode also memory per idle learner container and learners per 24 GiB VM.  Loopback only; each burst is bounded in time.
Swarm mode builds a two-node swarm on this machine (tests/swarm_nodes.py: a second engine in a network
namespace) and measures N=30 on one node (the worker drained; also the baseline) and then N=30 other
learners on both nodes, in the same run.

Run as root from the repo:  /opt/donghaeng/venv/bin/python benchmarks/class_start.py [--mode docker|local|swarm]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from donghaeng.services.classprepare import prepare_servers  # noqa: E402
from donghaeng.hub.queue import prepare_token  # noqa: E402
from donghaeng.hub.containers import docker_client, remove_learners  # noqa: E402
from hubclient import HubUser  # noqa: E402
from labharness import Lab, running_lab  # noqa: E402
from swarm_nodes import two_node_swarm  # noqa: E402

SIZES = (10, 30)
SWARM_SIZE = 30  # swarm mode: this many on one node, then as many others on two
BASELINE_RUNS = 3
DEADLINE = 600  # seconds one burst may take before its stragglers count as failures
VM_GIB, RESERVED_GIB = 24, 4  # the hub, proxy, model service and OS keep ~4 GiB


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cold(lab: Lab, logins: list[str]) -> tuple[list[float], int]:
    """Start these servers all at once (no limit of our own: the hub's queue decides)."""
    api = f"{lab.url}/hub/api"
    report = asyncio.run(prepare_servers(api, prepare_token(lab.settings), logins, len(logins), timeout=DEADLINE))
    return list(report.ready.values()), len(report.failed)


def stop_all(lab: Lab, logins: list[str]) -> None:
    import httpx

    headers = {"Authorization": f"token {prepare_token(lab.settings)}"}
    for login in logins:
        httpx.delete(f"{lab.url}/hub/api/users/{login}/server", headers=headers, timeout=120)
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        users = httpx.get(f"{lab.url}/hub/api/users", headers=headers, timeout=30).json()
        if not any(u["servers"] for u in users if u["name"] in logins):
            return
        time.sleep(1)


def warm(lab: Lab, keys: list[str]) -> tuple[list[float], int]:
    """Servers already running: learners log in together and wait for their own server to answer."""
    def arrive(key: str) -> float | None:
        start = time.monotonic()
        try:
            who = HubUser.logged_in(lab, key)
            while time.monotonic() - start < DEADLINE:
                if who.server("GET", "api/status").status_code == 200:
                    return time.monotonic() - start
                time.sleep(0.3)
        except Exception as e:  # noqa: BLE001 - a failed arrival is a data point, not a crash
            print(f"  {key}: {e}", file=sys.stderr)
        return None

    with ThreadPoolExecutor(len(keys)) as pool:
        times = list(pool.map(arrive, keys))
    ok = [t for t in times if t is not None]
    return ok, len(times) - len(ok)


def idle_memory_mib(logins: list[str]) -> float:
    """Mean memory of running idle learner containers (cgroup usage minus page cache)."""
    import docker

    client = docker.from_env()
    used = []
    for login in logins:
        stats = client.containers.get(f"donghaeng-{login}").stats(stream=False)["memory_stats"]
        used.append(stats["usage"] - stats.get("stats", {}).get("cache", 0))
    return sum(used) / len(used) / (1 << 20)


def line(label: str, times: list[float], failed: int, base: float) -> None:
    if not times:
        print(f"{label:32s} all {failed} failed")
        return
    p95 = percentile(times, .95)
    print(f"{label:32s} p50 {percentile(times, .5):6.1f} s  p95 {p95:6.1f} s  failures {failed:2d}  "
          f"p95/baseline {p95 / base:5.1f}x", flush=True)


def baseline(lab: Lab, login: str, mode: str) -> float:
    """One cold spawn, median of three (one sample is noisy on a shared VM)."""
    singles = []
    for _ in range(BASELINE_RUNS):
        times, _ = cold(lab, [login])
        assert times, "the single cold spawn failed; see artifacts/hub.log"
        singles += times
        stop_all(lab, [login])
        if mode != "local":  # a new container each time, as for the bursts
            remove_learners(lab.settings, [login])
    base = statistics.median(singles)
    print(f"[{mode}] single cold spawn (baseline)  {base:6.1f} s  (median of "
          f"{', '.join(f'{t:.1f}' for t in singles)})", flush=True)
    return base


def burst(lab: Lab, keys: list[str], base: float, where: str = "") -> list[str]:
    """N cold, then the same N warm (first and usual login); returns their logins, servers still running."""
    n, group = len(keys), [lab.logins[k] for k in keys]
    line(f"N={n} cold{where}", *cold(lab, group), base)
    # the servers the cold burst started are now 'prepared': learners arrive, first for the
    # very first time (initial password, then their own), then as on any later class day
    line(f"N={n} warm, first login{where}", *warm(lab, keys), base)
    line(f"N={n} warm, usual login{where}", *warm(lab, keys), base)
    return group


def swarm_bursts(lab: Lab, swarm, keys: list[str], n: int, base: float) -> None:
    """N on the one-node swarm (the worker drained), then N others on both nodes, in the same run.

    Other learners for the second burst: a learner's server goes back to the node holding their home.
    """
    for where, drained, chosen in ((", 1 node", True, keys[:n]), (", 2 nodes", False, keys[n:2 * n])):
        swarm.drain_worker(drained)
        group = burst(lab, chosen, base, where)
        print(f"  servers on the worker node: {len(swarm.running_on(swarm.worker_id))} of {n}", flush=True)
        stop_all(lab, group)
        remove_learners(lab.settings, group)  # the worker's volumes go with its engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("docker", "local", "swarm"), default="docker",
                        help="swarm: a two-node swarm on this machine (tests/swarm_nodes.py), next to one node")
    parser.add_argument("--sizes", type=int, nargs="+", help=f"default {SIZES}; swarm: {SWARM_SIZE}")
    args = parser.parse_args()
    sizes = args.sizes or ([SWARM_SIZE] if args.mode == "swarm" else list(SIZES))
    biggest = max(sizes)
    people = {f"l{i}": ("학습자", "learner", "ai-basics")
              for i in range(1 + biggest * (2 if args.mode == "swarm" else 1))}
    os.environ["DONGHAENG_SPAWNER"] = args.mode
    extra = "[model]\nenabled = false\n[class_start]\nidle_timeout = 0\n[containers]\n"
    if args.mode == "docker":
        extra += 'network = "dhbench"\nsubnet = "172.28.250.0/24"\n'
    extra += 'volume_name = "dhbench-{username}"\n'
    with ExitStack() as stack:
        swarm = stack.enter_context(two_node_swarm()) if args.mode == "swarm" else None
        if swarm:
            swarm.drain_worker(True)  # the baseline is one cold spawn on one node
        lab = stack.enter_context(running_lab(people, extra))
        logins, keys = [lab.logins[k] for k in people], list(people)[1:]
        try:
            base = baseline(lab, logins[0], args.mode)
            for n in sizes:
                if swarm:
                    swarm_bursts(lab, swarm, keys, n, base)
                    continue
                group = burst(lab, keys[:n], base)
                if args.mode == "docker" and n == biggest:
                    mib = idle_memory_mib(group)
                    print(f"idle learner container {mib:6.0f} MiB  →  about "
                          f"{int((VM_GIB - RESERVED_GIB) * 1024 // mib)} learners per {VM_GIB} GiB VM "
                          f"({RESERVED_GIB} GiB kept for hub, model and OS)")
                stop_all(lab, group)
                if args.mode == "docker":  # the next burst starts from fresh containers too
                    remove_learners(lab.settings, group)
        finally:
            if args.mode != "local":
                stop_all(lab, logins)
                remove_learners(lab.settings, logins)
            if args.mode == "docker":
                docker_client().remove_network("dhbench")


if __name__ == "__main__":
    main()
