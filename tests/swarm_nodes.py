"""A two-node Docker Swarm on this machine: the host engine as manager, a second engine as worker.

The worker is a second ``dockerd`` in a network namespace of its own, joined to the host by a veth
pair: its own address, data root, exec root, socket, bridge and iptables, so to Swarm it
is another machine at another address (the hub reaches its learners' servers over the veth, they reach
the hub's services back over it).  What it shares with the host, unlike a real VM: the kernel, the CPUs
and the filesystem (standing in for the NFS share of the config folders a real worker mounts).  Images
reach it as they reach a real VM without a registry: the manager labels the node with its engine's
address (``ENGINE_LABEL``) and ``donghaeng images distribute`` streams ``docker save | docker load``.

Everything is removed afterwards and the host engine is left as found (out of the swarm if it was).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from donghaeng.deploy.image_refs import LEARNER_IMAGE
from donghaeng.deploy.images import ENGINE_LABEL, Delivery, distribute_images
from labharness import ARTIFACTS

NET_PREFIX = ipaddress.ip_network("10.213.0.0/16")  # the veth's /24 is picked from here
BRIDGE_PREFIX = ipaddress.ip_network("10.214.0.0/16")  # the worker's own docker0
BOOT_SECONDS = 90  # for the worker engine to answer, and for the node to be ready


class NodeUnavailable(RuntimeError):
    """This machine cannot host the second engine (not root, no dockerd, the host already in a swarm)."""


@dataclass
class TwoNodeSwarm:
    manager_id: str
    worker_id: str
    manager_addr: str
    worker_addr: str
    worker_host: str  # the worker engine as a Docker host (unix:///…/docker.sock)
    loaded: list[Delivery]  # the images put onto the worker

    def worker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The docker CLI against the worker engine."""
        return docker("-H", self.worker_host, *args, check=check)

    def node_of(self, service: str) -> str:
        """The node id the running task of *service* was placed on."""
        tasks = docker("service", "ps", "-q", "--filter", "desired-state=running", service).stdout.split()
        assert len(tasks) == 1, f"{service}: {tasks}"  # (both nodes have this machine's host name: ask by id)
        return docker("inspect", "--format", "{{.NodeID}}", tasks[0]).stdout.strip()

    def running_on(self, node_id: str) -> list[str]:
        """The ids of the tasks running on that node."""
        return docker("node", "ps", "-q", "--filter", "desired-state=running", node_id).stdout.split()

    def drain_worker(self, drained: bool) -> None:
        """Take the worker out of scheduling (a one-node swarm again) or put it back."""
        docker("node", "update", "--availability", "drain" if drained else "active", self.worker_id)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _free_subnet(prefix: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """A /24 of *prefix* that no route on this machine overlaps."""
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    taken = []
    for word in routes.split():
        try:
            taken.append(ipaddress.ip_network(word, strict=False))
        except ValueError:  # not an address
            pass
    for _ in range(50):
        subnet = list(prefix.subnets(new_prefix=24))[secrets.randbelow(256)]
        if not any(subnet.overlaps(t) for t in taken):
            return subnet
    raise NodeUnavailable(f"no free /24 in {prefix}")


def _check_machine() -> None:
    if os.geteuid() != 0:
        raise NodeUnavailable("a second Docker engine needs root (as .ci/run runs)")
    missing = [tool for tool in ("docker", "dockerd", "ip", "nsenter") if not shutil.which(tool)]
    if missing:
        raise NodeUnavailable(f"missing here: {', '.join(missing)}")
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}", check=False)
    if state.returncode != 0:
        raise NodeUnavailable(f"no Docker daemon here: {state.stderr.strip()}")
    if state.stdout.strip() != "inactive":
        # a swarm someone else made (another test, an admin): joining a worker to it is not ours to do
        raise NodeUnavailable(f"the host engine is already in a swarm ({state.stdout.strip()})")


def _wait(what: str, ready, seconds: float = BOOT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s (log: {ARTIFACTS / 'worker-dockerd.log'})")


@contextmanager
def _network_namespace(tag: str) -> Iterator[tuple[str, str, str]]:
    """A namespace with a veth to the host: (namespace, host address, worker address)."""
    subnet = _free_subnet(NET_PREFIX)
    host_addr, worker_addr = (str(a) for a in list(subnet.hosts())[:2])
    ns, host_if, worker_if = f"dhw{tag}", f"dhw{tag}h", f"dhw{tag}w"
    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", worker_if)
        ip("link", "set", worker_if, "netns", ns)
        ip("addr", "add", f"{host_addr}/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        for args in (("addr", "add", f"{worker_addr}/24", "dev", worker_if), ("link", "set", worker_if, "up"),
                     ("link", "set", "lo", "up")):
            ip("-n", ns, *args)
        yield ns, host_addr, worker_addr
    finally:
        ip("netns", "del", ns)  # takes the veth pair with it
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)


@contextmanager
def _worker_engine(ns: str, tag: str) -> Iterator[str]:
    """A dockerd inside *ns* with state of its own; yields its Docker host."""
    root = Path(tempfile.mkdtemp(prefix=f"donghaeng-worker-{tag}-", dir="/var/tmp"))
    sock = root / "docker.sock"
    driver = docker("info", "--format", "{{.Driver}}").stdout.strip()
    bridge = _free_subnet(BRIDGE_PREFIX)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "worker-dockerd.log").open("ab") as log:
        engine = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{ns}", "--", "dockerd", "--data-root", str(root / "data"),
             "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"), "-H", f"unix://{sock}",
             "--bip", f"{next(bridge.hosts())}/24", "--storage-driver", driver,
             "--containerd-namespace", f"dhw{tag}", "--containerd-plugins-namespace", f"dhw{tag}-plugins"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    host = f"unix://{sock}"
    try:
        _wait("worker engine", lambda: engine.poll() is not None
              or docker("-H", host, "version", check=False).returncode == 0)
        if engine.poll() is not None:
            raise RuntimeError(f"the worker dockerd exited ({engine.returncode}); see {ARTIFACTS}/worker-dockerd.log")
        yield host
    finally:
        if engine.poll() is None:
            engine.send_signal(signal.SIGTERM)  # stops its containers and its containerd
            try:
                engine.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(engine.pid, signal.SIGKILL)
                engine.wait()
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def two_node_swarm(images: tuple[str, ...] = (LEARNER_IMAGE,)) -> Iterator[TwoNodeSwarm]:
    """The host engine as manager, a worker engine joined, *images* loaded onto the worker.

    Only the learner image by default: learners' servers are the only swarm tasks.  Autograde runs on
    the hub node (the course folder is there), so the grader image stays on the manager.
    """
    _check_machine()
    tag = secrets.token_hex(2)
    with ExitStack() as stack:
        ns, manager_addr, worker_addr = stack.enter_context(_network_namespace(tag))
        worker_host = stack.enter_context(_worker_engine(ns, tag))
        had_gwbridge = bool(docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$").stdout.strip())
        docker("swarm", "init", "--advertise-addr", manager_addr, "--listen-addr", f"{manager_addr}:2377")
        if not had_gwbridge:  # joining a swarm leaves this bridge behind
            stack.callback(docker, "network", "rm", "docker_gwbridge", check=False)
        stack.callback(docker, "swarm", "leave", "--force", check=False)
        token = docker("swarm", "join-token", "-q", "worker").stdout.strip()
        docker("-H", worker_host, "swarm", "join", "--token", token, "--advertise-addr", worker_addr,
               "--listen-addr", f"{worker_addr}:2377", f"{manager_addr}:2377")
        worker_id = docker("-H", worker_host, "info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        stack.callback(docker, "node", "rm", "--force", worker_id, check=False)
        stack.callback(docker, "-H", worker_host, "swarm", "leave", "--force", check=False)
        _wait("worker node", lambda: docker("node", "inspect", "--format", "{{.Status.State}}", worker_id)
              .stdout.strip() == "ready")
        docker("node", "update", "--label-add", f"{ENGINE_LABEL}={worker_host}", worker_id)
        yield TwoNodeSwarm(
            manager_id=docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip(), worker_id=worker_id,
            manager_addr=manager_addr, worker_addr=worker_addr, worker_host=worker_host,
            loaded=distribute_images(images, [worker_host]))
