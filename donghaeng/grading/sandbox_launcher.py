"""The sandbox launcher: ``python -m donghaeng.grading.sandbox_launcher [limits] -- <kernel command>``.

:class:`donghaeng.grading.sandbox.SandboxKernelManager` starts every autograde kernel through this module (see its
docstring for what the sandbox takes away).  It imports only the standard library: it runs once per
kernel, and importing nbgrader here cost about 2 s of CPU for each graded submission.

The launcher fails closed: when a namespace step fails it does not run the kernel, and it tells the
kernel manager why on ``--status-fd`` (one line, ``refused: <message>``), so autograde can say what the
system lacks.  ``--allow-unisolated`` (``SandboxKernelManager.require_isolation = False``) runs the kernel
with the resource limits only instead, and says ``unisolated: <message>``.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os
import re
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
# Folders every account may write to: each kernel gets its own empty, size-capped copy, so no kernel
# sees another's files (or its connection file) there.
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# The first words of every refusal: SandboxKernelManager raises them, courses.py finds them in a log.
REFUSED = "채점 커널을 격리할 수 없어서 실행하지 않았어요"
OPT_OUT = "c.SandboxKernelManager.require_isolation = False"
_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(OSError):
    """One namespace step failed; ``step`` names it (``unshare``, ``mount /tmp``, …)."""

    def __init__(self, err: int, step: str) -> None:
        super().__init__(err, f"{step}: {os.strerror(err)}")
        self.step = step


def _check(rc: int, step: str) -> None:
    if rc != 0:
        raise IsolationError(ctypes.get_errno(), step)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise IsolationError(e.errno or errno.EPERM, f"write {path}") from e


def _sysctl(name: str) -> str | None:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def explain(error: OSError) -> tuple[str, str]:
    """What the system lacks, in Korean and in English, with the setting that fixes it."""
    step = getattr(error, "step", "")
    if step == "unshare" and error.errno == errno.ENOSPC:
        limit = _sysctl("user.max_user_namespaces")
        return (f"사용자 네임스페이스 수 한도(user.max_user_namespaces = {limit})에 걸렸어요. 관리자가 "
                f"`sysctl -w user.max_user_namespaces=15000`으로 늘려 주세요",
                f"the user namespace limit is reached (user.max_user_namespaces = {limit}); raise it with "
                f"`sysctl -w user.max_user_namespaces=15000`")
    if step == "unshare" and error.errno == errno.EPERM:
        if _sysctl("kernel.unprivileged_userns_clone") == "0":
            return ("권한 없는 사용자 네임스페이스가 꺼져 있어요(kernel.unprivileged_userns_clone = 0). 관리자가 "
                    "`sysctl -w kernel.unprivileged_userns_clone=1`로 켜 주세요",
                    "unprivileged user namespaces are off (kernel.unprivileged_userns_clone = 0); turn them on "
                    "with `sysctl -w kernel.unprivileged_userns_clone=1`")
        if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
            return ("AppArmor가 권한 없는 사용자 네임스페이스를 막고 있어요"
                    "(kernel.apparmor_restrict_unprivileged_userns = 1). 관리자가 "
                    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`으로 풀어 주세요",
                    "AppArmor restricts unprivileged user namespaces "
                    "(kernel.apparmor_restrict_unprivileged_userns = 1); allow them with "
                    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`")
        return ("이 시스템이 unshare(2)를 막고 있어요(컨테이너의 seccomp 정책일 수 있어요). unshare를 허용하거나 "
                "lab.toml의 [autograde]에서 sandbox = \"docker\"를 써 주세요",
                "this system forbids unshare(2) (a container's seccomp policy?); allow it, or set "
                "sandbox = \"docker\" under [autograde] in lab.toml")
    return (f"격리 단계 '{step or error}'가 실패했어요({error.strerror})",
            f"the isolation step '{step or error}' failed ({error.strerror})")


def refusal(error: OSError) -> str:
    """The one-line admin message of a kernel that was not started: Korean first, English after."""
    korean, english = explain(error)
    return (f"{REFUSED}: {korean}. 격리 없이 채점하려면(권하지 않아요) nbgrader 설정에 {OPT_OUT}를 넣어요. / "
            f"The grading kernel was not started because it cannot be isolated: {english}. To grade without "
            f"isolation (not recommended), set {OPT_OUT} in the nbgrader config.")


def refusal_in(log: str) -> str | None:
    """The refusal a grading log holds, if a kernel was refused (for the autograde summary)."""
    found = re.search(re.escape(REFUSED) + r"[^\n]*", log)
    return found.group(0) if found else None


def _enter_namespaces(keep: list[str], hide: list[str], network: bool, tmp_mb: int) -> None:
    """Unshare user/mount/IPC/PID(/net) namespaces; cover *hide* and :data:`PRIVATE_TMP` with tmpfs.

    The folders in *keep* (and the working folder) stay visible at their paths, also inside covered ones.
    """
    work = os.getcwd()
    keep = [*keep, work]
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID | (0 if network else CLONE_NEWNET)
    _check(_libc.unshare(flags), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    try:  # the kernel may not nest namespaces of its own (less kernel surface); /proc/sys may be read-only
        _write("/proc/sys/user/max_user_namespaces", "0")
    except OSError:
        pass
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = sorted({os.path.realpath(k) for k in keep if k and os.path.isdir(k)})
    options = {os.path.realpath(h): "mode=0700,size=64m" for h in hide if h and os.path.isdir(h)}
    options.update({os.path.realpath(t): f"mode=1777,size={tmp_mb}m" for t in PRIVATE_TMP if os.path.isdir(t)})
    covered = sorted((h for h in options if h != "/" and not any(k == h or h.startswith(k + "/") for k in keep)),
                     key=len)
    # Hold each kept folder that will be covered by an O_PATH descriptor, cover, then bind it back from it.
    held = [(os.open(path, os.O_PATH | os.O_DIRECTORY), path) for path in keep
            if any(path.startswith(h + "/") for h in covered)]
    for path in covered:
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)  # a folder inside one already covered: keep its path
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options[path])
    for fd, path in held:
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
    # A cwd opened before the mounts would still reach the covered folders through "..": re-enter it.
    os.chdir(work)


def _set_limits(args: argparse.Namespace) -> None:
    mib = 1024 * 1024
    for limit, value in ((resource.RLIMIT_AS, args.memory_mb * mib), (resource.RLIMIT_NPROC, args.processes),
                         (resource.RLIMIT_CPU, args.cpu_seconds), (resource.RLIMIT_FSIZE, args.file_mb * mib),
                         (resource.RLIMIT_NOFILE, args.open_files), (resource.RLIMIT_CORE, 0)):
        if value > 0:
            _soft, hard = resource.getrlimit(limit)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (value, value))


def _tell(fd: int | None, kind: str, message: str) -> None:
    """One status line for the kernel manager (the fd closes by itself when the kernel is exec'd)."""
    print(f"donghaeng.grading.sandbox: {message}", file=sys.stderr)
    if fd is not None:
        os.write(fd, f"{kind}: {message}\n".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m donghaeng.grading.sandbox_launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--processes", type=int, default=64)
    parser.add_argument("--cpu-seconds", type=int, default=600)
    parser.add_argument("--file-mb", type=int, default=64)
    parser.add_argument("--open-files", type=int, default=256)
    parser.add_argument("--network", action="store_true")
    parser.add_argument("--keep", action="append", default=[])
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--status-fd", type=int, help="pipe to the kernel manager (closed when the kernel runs)")
    parser.add_argument("--allow-unisolated", action="store_true",
                        help="run the kernel with resource limits only when namespaces are unavailable")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    if args.status_fd is not None:
        os.set_inheritable(args.status_fd, False)

    try:
        _enter_namespaces(args.keep, args.hide, args.network, args.file_mb)
    except OSError as e:
        if not args.allow_unisolated:
            _tell(args.status_fd, "refused", refusal(e))
            return 126
        korean, english = explain(e)
        _tell(args.status_fd, "unisolated", f"격리 없이 자원 한도만 걸고 채점해요: {korean} / "
                                            f"grading with resource limits only, no isolation: {english}")
        _set_limits(args)
        os.execvp(args.command[0], args.command)

    # The first child is PID 1 of the new PID namespace: when it dies, every process it forked dies.
    child = os.fork()
    if child == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.setpgid(0, 0)  # signals reach the kernel once, through the launcher
        try:  # a /proc that shows only the sandbox's own processes; the old one shows every kernel's
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV)
        except OSError as e:
            _tell(args.status_fd, "refused", refusal(e))
            os._exit(126)
        _set_limits(args)
        try:
            os.execvp(args.command[0], args.command)
        finally:
            os._exit(127)
    if args.status_fd is not None:
        os.close(args.status_fd)  # the child holds it until the kernel runs

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
