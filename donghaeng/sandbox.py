"""Sandboxed kernels for autograde: learners' code never runs with the grader account's rights.

nbgrader's ``Execute`` preprocessor is nbclient's ``NotebookClient``, which starts each notebook's
kernel through a configurable ``kernel_manager_class``.  :class:`SandboxKernelManager` keeps nbgrader's
own executor and wraps the kernel command in ``python -m donghaeng.sandbox_launcher``, a small launcher that
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

import os
import shutil
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
            sys.executable, "-m", "donghaeng.sandbox_launcher",
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
