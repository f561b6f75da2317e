"""The sandbox launcher: ``python -m donghaeng.sandbox_launcher [limits] -- <kernel command>``.

:class:`donghaeng.sandbox.SandboxKernelManager` starts every autograde kernel through this module (see its
docstring for what the sandbox takes away).  It imports only the standard library: it runs once per
kernel, and importing nbgrader here cost about 2 s of CPU for each graded submission.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import sys
import tempfile

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
    parser = argparse.ArgumentParser(prog="python -m donghaeng.sandbox_launcher", description=__doc__.splitlines()[0])
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
