"""Sandboxed kernels for autograde: learners' code never runs with the grader account's rights.

nbgrader's ``Execute`` preprocessor is nbclient's ``NotebookClient``, which starts each notebook's
kernel through a configurable ``kernel_manager_class``.  :class:`SandboxKernelManager` keeps nbgrader's
own executor and wraps the kernel command in ``python -m donghaeng.grading.sandbox_launcher``, a small launcher that
needs no root at grading time (the grader account ``grader-<course>`` is not root):

* new user, mount, IPC, network and PID namespaces (unprivileged user namespaces, Linux >= 5.14 so that
  ``RLIMIT_NPROC`` is counted per namespace: one kernel's fork bomb does not starve the others);
* no network: the new network namespace has only a loopback interface, left down; the kernel talks
  to nbgrader over Unix sockets (``transport = "ipc"``) in a private folder (mode 0700, in the host's
  ``/tmp``, which no kernel sees);
* its own empty ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run/lock`` (tmpfs of ``file_mb`` each), so
  kernels graded side by side see nothing of each other: no files, no connection files (their HMAC keys
  would let one submission run code in another's kernel), no System V or POSIX IPC;
* the course folder (sources, hidden tests, gradebook, other learners' work), the grader's home and
  ``/home`` are covered by empty private tmpfs mounts; only the submission's own work folder (the
  autograded copy nbgrader executes in) is bound back at its usual path.  The mounts are made before
  the kernel starts and are locked to it (it keeps no capabilities after ``exec``);
* resource limits in the kernel process: address space (memory), processes, CPU seconds, file size
  and open files;
* the kernel is PID 1 of its own PID namespace and dies with the launcher, so when nbgrader kills a
  kernel (cell timeout, end of the notebook) every process it forked dies with it.

Where a namespace step fails (user namespaces off, a container's seccomp policy) the kernel is not
started: :class:`SandboxUnavailable` says, Korean first, what the system lacks and which setting fixes
it, and autograde shows that for every submission.  ``SandboxKernelManager.require_isolation = False``
(an nbgrader config file) grades with the resource limits only instead.  The kernel still runs as the grader's uid:
a separate account would need root (or a setuid helper) at every launch; the namespaces above take
away what that uid could reach instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbgrader.preprocessors import LimitOutput
from traitlets import Bool, Integer, List, Unicode

from donghaeng.common.settings import Autograde

DEFAULTS = Autograde()  # lab.toml's [autograde] defaults: one place for them

__all__ = ["LimitOutputSize", "SandboxKernelManager", "SandboxUnavailable"]

# How long the launcher may take to build the sandbox before the kernel runs (it takes milliseconds).
_LAUNCH_REPORT_TIMEOUT = 60.0


class SandboxUnavailable(RuntimeError):
    """The launcher could not isolate the kernel and did not start it; the message is for the admin."""


async def _read_to_end(fd: int, timeout: float) -> str:
    """Everything written to the pipe *fd* until its last writer closes it (or *timeout* s pass)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    chunks: list[bytes] = []

    def readable() -> None:
        data = os.read(fd, 65536)
        if data:
            chunks.append(data)
        elif not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


# ----------------------------------------------------------------------------- kernel manager side


class SandboxKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels start inside ``python -m donghaeng.grading.sandbox_launcher``."""

    memory_mb = Integer(DEFAULTS.memory_mb, config=True, help="Address space one kernel may use (MiB, RLIMIT_AS).")
    processes = Integer(DEFAULTS.processes, config=True, help="Processes and threads in one kernel's sandbox (RLIMIT_NPROC).")
    cpu_seconds = Integer(DEFAULTS.cpu_seconds, config=True, help="CPU seconds one kernel may use (RLIMIT_CPU).")
    file_mb = Integer(DEFAULTS.file_mb, config=True, help="Largest file the kernel may write (MiB, RLIMIT_FSIZE).")
    open_files = Integer(DEFAULTS.open_files, config=True, help="Open file descriptors (RLIMIT_NOFILE).")
    network = Bool(False, config=True, help="Leave the network reachable (default: a private, empty netns).")
    hide_paths = List(Unicode(), config=True,
                      help="Folders covered by an empty tmpfs inside the sandbox (the work folder stays).")
    require_isolation = Bool(True, config=True, help=(
        "Refuse to start a kernel the launcher cannot isolate (namespaces, private /tmp, hidden folders). "
        "False: grade with the resource limits only, with a warning in the log (not recommended)."))

    _sandbox_dir: str | None = None
    _status: tuple[int, int] | None = None

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
        # mkdtemp's folder is 0700, in the host's /tmp: no kernel sees it (each has its own /tmp).
        self._sandbox_dir = tempfile.mkdtemp(prefix="donghaeng-kernel-")
        self.transport = "ipc"
        self.ip = os.path.join(self._sandbox_dir, "k")
        self.connection_file = os.path.join(self._sandbox_dir, "kernel.json")
        # nbgrader gives the notebook's folder, maybe relative to the course folder (our cwd).
        self._sandbox_cwd = os.path.abspath(str(kw.get("cwd") or os.getcwd()))
        self._status = os.pipe()  # the launcher says on it why it refused; it closes when the kernel runs
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        return kernel_cmd, {**kw, "pass_fds": (self._status[1],)}

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:  # type: ignore[override]
        assert self._status is not None
        read, write = self._status
        self._status = None
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        kind, _, message = (await _read_to_end(read, _LAUNCH_REPORT_TIMEOUT)).strip().partition(": ")
        if kind == "unisolated":
            self.log.warning("donghaeng.grading.sandbox: %s", message)
        elif kind == "refused":
            await self._async_kill_kernel()  # it has exited: reap it, then drop its folder and sockets
            await self._async_cleanup_resources()
            raise SandboxUnavailable(message)

    def format_kernel_cmd(self, extra_arguments=None):  # type: ignore[override]
        cmd = super().format_kernel_cmd(extra_arguments)
        launcher = [
            sys.executable, "-m", "donghaeng.grading.sandbox_launcher",
            "--memory-mb", str(self.memory_mb), "--processes", str(self.processes),
            "--cpu-seconds", str(self.cpu_seconds), "--file-mb", str(self.file_mb),
            "--open-files", str(self.open_files), "--keep", self._sandbox_cwd, "--keep", self._sandbox_dir or "",
            *(["--status-fd", str(self._status[1])] if self._status else []),
        ]
        if self.network:
            launcher.append("--network")
        if not self.require_isolation:
            launcher.append("--allow-unisolated")
        for path in self._hidden():
            launcher += ["--hide", path]
        return [*launcher, "--", *cmd]

    async def _async_cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._sandbox_dir:
            shutil.rmtree(self._sandbox_dir, ignore_errors=True)
            self._sandbox_dir = None


class LimitOutputSize(LimitOutput):
    """nbgrader's ``LimitOutput`` (lines) plus a cap on characters, for output printed on one line."""

    max_chars = Integer(DEFAULTS.output_chars, config=True, help="Characters of stream output kept per cell (-1: no limit).")

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
