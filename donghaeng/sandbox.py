"""Sandboxed kernels for autograde: learners' code never runs with the grader account's rights.

nbgrader's ``Execute`` preprocessor is nbclient's ``NotebookClient``, which starts each notebook's
kernel through a configurable ``kernel_manager_class``.  :class:`SandboxKernelManager` keeps nbgrader's
own executor and wraps the kernel command in ``python -m donghaeng.sandbox``, a small launcher that
needs no root at grading time (the grader account ``grader-<course>`` is not root):

* new user, mount, network and PID namespaces (unprivileged user namespaces, Linux >= 5.14 so that
  ``RLIMIT_NPROC`` is counted per namespace: one kernel's fork bomb does not starve the others);
* no network: the new network namespace has only a loopback interface, left down; the kernel talks
  to nbgrader over Unix sockets (``transport = "ipc"``) in a private folder;
* the course folder (sources, hidden tests, gradebook, other learners' work), the grader's home and
  ``/home`` are covered by empty private tmpfs mounts; only the submission's own work folder (the
  autograded copy nbgrader executes in) is bound back at its usual path.  The mounts are made before
  the kernel starts and are locked to it (it keeps no capabilities after ``exec``);
* resource limits in the kernel process: address space (memory), processes, CPU seconds, file size
  and open files;
* the kernel is PID 1 of its own PID namespace and dies with the launcher, so when nbgrader kills a
  kernel (cell timeout, end of the notebook) every process it forked dies with it.

Where user namespaces are not available the launcher says so on stderr and keeps the resource limits
(``DONGHAENG_SANDBOX_REQUIRE=1`` makes it refuse instead).  The kernel still runs as the grader's uid:
a separate account would need root (or a setuid helper) at every launch; the namespaces above take
away what that uid could reach instead.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import signal
import sys
import tempfile

from jupyter_client.manager import AsyncKernelManager
from nbgrader.preprocessors import Execute, LimitOutput
from traitlets import Bool, Integer, List, Unicode

# ----------------------------------------------------------------------------- kernel manager side


class SandboxKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels start inside ``python -m donghaeng.sandbox``."""

    memory_mb = Integer(2048, config=True, help="Address space one kernel may use (MiB, RLIMIT_AS).")
    processes = Integer(64, config=True, help="Processes and threads in one kernel's sandbox (RLIMIT_NPROC).")
    cpu_seconds = Integer(600, config=True, help="CPU seconds one kernel may use (RLIMIT_CPU).")
    file_mb = Integer(64, config=True, help="Largest file the kernel may write (MiB, RLIMIT_FSIZE).")
    open_files = Integer(256, config=True, help="Open file descriptors (RLIMIT_NOFILE).")
    network = Bool(False, config=True, help="Leave the network reachable (default: a private, empty netns).")
    hide_paths = List(Unicode(), config=True,
                      help="Folders covered by an empty tmpfs inside the sandbox (the work folder stays).")

    _sandbox_dir: str | None = None

    def _hidden(self) -> list[str]:
        paths = list(self.hide_paths)
        try:  # the nbgrader course folder, when the kernel runs under nbgrader
            root = self.config.CourseDirectory.root
            if isinstance(root, str) and root:
                paths.append(root)
        except AttributeError:
            pass
        home = os.environ.get("HOME")
        if home and home != "/":
            paths.append(home)
        return paths

    async def _async_pre_start_kernel(self, **kw):  # type: ignore[override]
        self._sandbox_dir = tempfile.mkdtemp(prefix="donghaeng-kernel-")
        self.transport = "ipc"
        self.ip = os.path.join(self._sandbox_dir, "k")
        self.connection_file = os.path.join(self._sandbox_dir, "kernel.json")
        # nbgrader gives the notebook's folder, maybe relative to the course folder (our cwd).
        self._sandbox_cwd = os.path.abspath(str(kw.get("cwd") or os.getcwd()))
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments=None):  # type: ignore[override]
        cmd = super().format_kernel_cmd(extra_arguments)
        launcher = [
            sys.executable, "-m", "donghaeng.sandbox",
            "--memory-mb", str(self.memory_mb), "--processes", str(self.processes),
            "--cpu-seconds", str(self.cpu_seconds), "--file-mb", str(self.file_mb),
            "--open-files", str(self.open_files), "--keep", self._sandbox_cwd, "--keep", self._sandbox_dir or "",
        ]
        if self.network:
            launcher.append("--network")
        for path in self._hidden():
            launcher += ["--hide", path]
        return [*launcher, "--", *cmd]

    async def _async_cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._sandbox_dir:
            shutil.rmtree(self._sandbox_dir, ignore_errors=True)
            self._sandbox_dir = None


class SandboxExecute(Execute):
    """nbgrader's ``Execute`` with sandboxed kernels (its ``__init__`` pins the kernel manager class)."""

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)


class LimitOutputSize(LimitOutput):
    """nbgrader's ``LimitOutput`` (lines) plus a cap on characters, for output printed on one line."""

    max_chars = Integer(100_000, config=True, help="Characters of stream output kept per cell (-1: no limit).")

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if self.max_chars >= 0 and cell.cell_type == "code":
            used = 0
            for output in cell.outputs:
                if output.output_type == "stream":
                    room = max(self.max_chars - used, 0)
                    if len(output.text) > room:
                        output.text = output.text[:room] + "\n... Output truncated ..."
                    used += len(output.text)
        return cell, resources


# ----------------------------------------------------------------------------------- launcher side
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _enter_namespaces(keep: list[str], hide: list[str], network: bool) -> None:
    """Unshare user/mount/PID(/net) namespaces and cover *hide* with tmpfs, keeping *keep* visible."""
    work = os.getcwd()
    keep = [*keep, work]
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | (0 if network else CLONE_NEWNET)
    _check(_libc.unshare(flags), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = [os.path.realpath(k) for k in keep if k and os.path.isdir(k)]
    hide = sorted({os.path.realpath(h) for h in hide if h and os.path.isdir(h)}, key=len)
    hide = [h for h in hide if h != "/" and not any(k == h or h.startswith(k + "/") for k in keep)]
    # Park each kept folder on a private tmpfs, cover the hidden ones, then bind the kept ones back.
    stage = tempfile.mkdtemp(prefix="donghaeng-stage-")
    _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=1m")
    parked = []
    for i, path in enumerate(keep):
        if any(path.startswith(h + "/") for h in hide):
            spot = os.path.join(stage, str(i))
            os.mkdir(spot)
            _mount(path, spot, None, MS_BIND | MS_REC)
            parked.append((spot, path))
    for path in hide:
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)  # a folder inside one already covered: keep its path
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64m")
    for spot, path in parked:
        os.makedirs(path, exist_ok=True)
        _mount(spot, path, None, MS_BIND | MS_REC)
    # A cwd opened before the mounts would still reach the covered folders through "..": re-enter it.
    os.chdir(work)
    _check(_libc.umount2(stage.encode(), MNT_DETACH), "umount stage")
    try:
        os.rmdir(stage)
    except OSError:
        pass


def _set_limits(args: argparse.Namespace) -> None:
    mib = 1024 * 1024
    for limit, value in ((resource.RLIMIT_AS, args.memory_mb * mib), (resource.RLIMIT_NPROC, args.processes),
                         (resource.RLIMIT_CPU, args.cpu_seconds), (resource.RLIMIT_FSIZE, args.file_mb * mib),
                         (resource.RLIMIT_NOFILE, args.open_files), (resource.RLIMIT_CORE, 0)):
        if value > 0:
            _soft, hard = resource.getrlimit(limit)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (value, value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m donghaeng.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--processes", type=int, default=64)
    parser.add_argument("--cpu-seconds", type=int, default=600)
    parser.add_argument("--file-mb", type=int, default=64)
    parser.add_argument("--open-files", type=int, default=256)
    parser.add_argument("--network", action="store_true")
    parser.add_argument("--keep", action="append", default=[])
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)

    try:
        _enter_namespaces(args.keep, args.hide, args.network)
        isolated = True
    except OSError as e:
        if os.environ.get("DONGHAENG_SANDBOX_REQUIRE") == "1":
            print(f"donghaeng.sandbox: cannot isolate the kernel ({e}); refusing", file=sys.stderr)
            return 126
        print(f"donghaeng.sandbox: no namespaces ({e}); resource limits only", file=sys.stderr)
        isolated = False

    if not isolated:
        _set_limits(args)
        os.execvp(args.command[0], args.command)

    # The first child is PID 1 of the new PID namespace: when it dies, every process it forked dies.
    child = os.fork()
    if child == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.setpgid(0, 0)  # signals reach the kernel once, through the launcher
        try:  # a /proc that shows only the sandbox's own processes
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV)
        except OSError:
            pass
        _set_limits(args)
        try:
            os.execvp(args.command[0], args.command)
        finally:
            os._exit(127)

    def forward(signum, _frame):
        # PID 1 ignores signals it has no handler for: anything but an interrupt ends the sandbox.
        try:
            os.kill(child, signum if signum in (signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2) else signal.SIGKILL)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main())
