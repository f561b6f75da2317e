"""The root-side helper that starts autograde containers for the grader accounts (see sandbox_docker).

Grader accounts (``grader-<course>``) are not root and get no access to the Docker socket (that would be
root on the host).  ``sudo`` lets them run this module, and only this module, through
``/usr/local/sbin/donghaeng-docker-kernel`` (:func:`install_helper`).  It checks its caller (a ``grader-``
account), the folders (owned by the caller, the socket folder private), the image (``donghaeng/grader``),
the command (the image's ipykernel) and caps the limits, then runs ``docker run`` with the caller's uid.
It imports little, because it runs once per grading kernel.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from donghaeng.deploy.image_refs import GRADER_IMAGE, GRADER_UID, IMAGE_PYTHON, docker_ready, image_label

HELPER = Path("/usr/local/sbin/donghaeng-docker-kernel")
SUDOERS = Path("/etc/sudoers.d/donghaeng-docker-kernel")
NAME_PREFIX = "donghaeng-grade"
OWNER_LABEL = "org.donghaeng.grader-uid"
CALLER_PREFIX = "grader-"
# Upper bounds the helper enforces whatever a caller asks for.
MAX_MEMORY_MB, MAX_PIDS, MAX_CPU_SECONDS, MAX_FILE_MB, MAX_OPEN_FILES = 16384, 1024, 3600, 1024, 4096


def helper_command() -> list[str]:
    """How this process reaches the helper: directly as root, through ``sudo -n`` otherwise."""
    if os.geteuid() == 0:
        return [sys.executable, "-m", "donghaeng.grading.sandbox_docker_helper"]
    return ["sudo", "-n", str(HELPER)]


def available(image: str = GRADER_IMAGE) -> bool:
    """True when this account can start grading containers: the daemon answers and the image exists."""
    try:
        return subprocess.run([*helper_command(), "check", "--image", image], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Refused(Exception):
    """The helper will not start this container; the message says why."""


def _caller() -> tuple[int, int, str]:
    """uid, gid and name of the account that asked (through sudo, or this process)."""
    uid = int(os.environ["SUDO_UID"]) if os.geteuid() == 0 and "SUDO_UID" in os.environ else os.getuid()
    entry = pwd.getpwuid(uid)
    return uid, entry.pw_gid, entry.pw_name


def _owned_dir(path: str, uid: int, private: bool = False) -> str:
    """*path* as a real directory the caller owns (and, for *private*, nobody else may enter)."""
    if not path or not os.path.isabs(path) or re.search(r"[,:=\s]", path):
        raise Refused(f"unsafe path {path!r}")
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or os.path.realpath(path) != os.path.normpath(path):
        raise Refused(f"{path} is not a plain directory")
    if uid != 0 and st.st_uid != uid:
        raise Refused(f"{path} does not belong to the caller")
    if private and st.st_mode & 0o077:
        raise Refused(f"{path} must be private (0700)")
    return path


def docker_run_args(args: argparse.Namespace, caller: int, gid: int) -> list[str]:
    """The one ``docker run`` command line, from checked arguments; root's kernels run as the image's user."""
    uid, gid = (GRADER_UID, GRADER_UID) if caller == 0 else (caller, gid)
    work = _owned_dir(args.workdir, caller)
    sockets = _owned_dir(args.sockets, uid, private=True)
    if not re.fullmatch(rf"{NAME_PREFIX}-{caller}-[0-9a-f]{{12}}", args.name):
        raise Refused(f"bad container name {args.name!r}")
    if not args.image.startswith("donghaeng/grader:"):
        raise Refused(f"only donghaeng/grader images, not {args.image!r}")
    kernel = args.command
    if (kernel[:4] != [IMAGE_PYTHON, "-m", "ipykernel_launcher", "-f"] or len(kernel) < 5
            or os.path.dirname(kernel[4]) != sockets
            or not all(re.fullmatch(r"--[A-Za-z_][\w.]*=[^\s]*", a) for a in kernel[5:])):
        raise Refused("the command must be the image's ipykernel with a connection file in the socket folder")
    memory = min(max(args.memory_mb, 128), MAX_MEMORY_MB)
    file_bytes = min(max(args.file_mb, 1), MAX_FILE_MB) * 1024 * 1024
    cpu = min(max(args.cpu_seconds, 1), MAX_CPU_SECONDS)
    files = min(max(args.open_files, 32), MAX_OPEN_FILES)
    return [
        "docker", "run", "--rm", "--init", "--name", args.name, "--label", f"{OWNER_LABEL}={caller}",
        "--network", "none", "--read-only", "--user", f"{uid}:{gid}", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--ipc", "private",
        # RLIMIT_DATA turns a memory bomb into a MemoryError the notebook shows; the cgroup limit backs it up.
        "--memory", f"{memory + 256}m", "--memory-swap", f"{memory + 256}m",
        "--ulimit", f"data={memory * 1024 * 1024}:{memory * 1024 * 1024}",
        "--pids-limit", str(min(max(args.processes, 8), MAX_PIDS)),
        "--cpus", f"{min(max(args.cpus, 0.1), float(os.cpu_count() or 1)):.2f}",
        "--ulimit", f"cpu={cpu}:{cpu}", "--ulimit", f"fsize={file_bytes}:{file_bytes}",
        "--ulimit", f"nofile={files}:{files}", "--ulimit", "core=0:0",
        "--tmpfs", f"/tmp:rw,nosuid,nodev,size={file_bytes // 1024}k,mode=1777",
        "--mount", f"type=bind,src={work},dst={work}", "--mount", f"type=bind,src={sockets},dst={sockets}",
        "--workdir", work, "--env", "HOME=/tmp",
        args.image, *kernel,
    ]


def _helper(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="donghaeng-docker-kernel", description="Start or remove a grading container.")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="exit 0 when the daemon answers and the grader image exists")
    check.add_argument("--image", default=GRADER_IMAGE)
    rm = sub.add_parser("rm", help="remove one of the caller's grading containers")
    rm.add_argument("name")
    run = sub.add_parser("run", help="run a grading kernel")
    run.add_argument("--name", required=True)
    run.add_argument("--image", default=GRADER_IMAGE)
    run.add_argument("--workdir", required=True)
    run.add_argument("--sockets", required=True)
    for opt, kind in (("--memory-mb", int), ("--processes", int), ("--cpus", float), ("--cpu-seconds", int),
                      ("--file-mb", int), ("--open-files", int)):
        run.add_argument(opt, type=kind, required=True)
    run.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    uid, gid, name = _caller()
    if uid != 0 and not name.startswith(CALLER_PREFIX):
        raise Refused(f"only course grader accounts ({CALLER_PREFIX}…) may start grading containers")
    if args.action == "check":
        return 0 if args.image.startswith("donghaeng/grader:") and docker_ready() and image_label(args.image) is not None \
            else 1
    if args.action == "rm":
        if not re.fullmatch(rf"{NAME_PREFIX}-{uid}-[0-9a-f]{{12}}", args.name):
            raise Refused(f"not one of your containers: {args.name!r}")
        return subprocess.run(["docker", "rm", "-f", args.name], capture_output=True).returncode
    command = docker_run_args(args, uid, gid)
    if os.getsid(0) != os.getpid():
        os.setpgid(0, 0)  # under sudo: an interrupt reaches docker once (relayed by sudo), not twice
    os.execvp(command[0], command)
    return 127


def install_helper() -> Path:
    """Install the root-owned helper and its sudoers rule (root only; run by `donghaeng images build grader`)."""
    HELPER.write_text(f'#!/bin/sh\n# 동행랩 autograde containers (donghaeng.grading.sandbox_docker_helper); see docs/decisions.md.\n'
                      f'exec {sys.executable} -I -m donghaeng.grading.sandbox_docker_helper "$@"\n', encoding="utf-8")
    HELPER.chmod(0o755)
    rule = (f"# 동행랩: course grader accounts start autograde containers only through this helper,\n"
            f"# which checks its caller, folders, image and limits (donghaeng/grading/sandbox_docker_helper.py).\n"
            f"Defaults!{HELPER} !use_pty, env_reset\n"
            f"ALL ALL=(root) NOPASSWD: {HELPER}\n")
    staged = SUDOERS.with_name(".donghaeng-docker-kernel.tmp")
    staged.write_text(rule, encoding="utf-8")
    staged.chmod(0o440)
    if shutil.which("visudo") and subprocess.run(["visudo", "-cqf", str(staged)]).returncode != 0:
        staged.unlink()
        raise RuntimeError("visudo rejected the sudoers rule")
    staged.rename(SUDOERS)
    return HELPER


def main(argv: list[str] | None = None) -> int:
    try:
        return _helper(argv)
    except (Refused, OSError) as e:
        print(f"donghaeng-docker-kernel: refused: {e}", file=sys.stderr)
        return 126


if __name__ == "__main__":
    sys.exit(main())
