"""Autograde kernels in throw-away containers (the grader image), when a Docker engine is available.

:class:`DockerKernelManager` is the container twin of :class:`donghaeng.grading.sandbox.SandboxKernelManager`:
nbgrader's own executor starts each notebook's kernel as

    docker run --rm --network none --read-only --user <grader uid> --cap-drop ALL
               --memory --pids-limit --cpus --ulimit … --tmpfs /tmp
               --mount <the submission's work folder> --mount <a private folder for the kernel's sockets>
               donghaeng/grader python -m ipykernel_launcher -f <connection file>

The kernel has no network at all (``--network none``); nbgrader talks to it over Unix sockets
(``transport = "ipc"``) in a private folder bind-mounted at the same path.  Nothing of the host is visible
except those two folders; the root filesystem is the image's, read-only.

Who may start containers: the Docker socket is root-equivalent, and the grader accounts
(``grader-<course>``) are not root.  They get no socket access; instead ``sudo`` lets them run one fixed
helper, :mod:`donghaeng.grading.sandbox_docker_helper`, which checks what it is asked and runs ``docker run``
with the caller's uid.  See docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile

from jupyter_client.manager import AsyncKernelManager
from traitlets import Float, Integer, List, Unicode

from donghaeng.deploy.image_refs import GRADER_IMAGE, GRADER_UID, IMAGE_PYTHON
from donghaeng.grading.sandbox import DEFAULTS
from donghaeng.grading.sandbox_docker_helper import NAME_PREFIX, available, helper_command

__all__ = ["DockerKernelManager", "available"]


# ----------------------------------------------------------------------------- kernel manager side
class DockerKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels run in a throw-away container of the grader image."""

    image = Unicode(GRADER_IMAGE, config=True, help="Image the kernels run in (built by `donghaeng images build grader`).")
    memory_mb = Integer(DEFAULTS.memory_mb, config=True, help="Memory of one kernel container (MiB): allocations past it fail.")
    processes = Integer(DEFAULTS.processes, config=True, help="Processes and threads in one kernel container (--pids-limit).")
    cpus = Float(1.0, config=True, help="CPU cores one kernel container may use at once (--cpus).")
    cpu_seconds = Integer(DEFAULTS.cpu_seconds, config=True, help="CPU seconds one kernel may use (RLIMIT_CPU).")
    file_mb = Integer(DEFAULTS.file_mb, config=True, help="Largest file the kernel may write, and the size of its /tmp (MiB).")
    open_files = Integer(DEFAULTS.open_files, config=True, help="Open file descriptors (RLIMIT_NOFILE).")
    launcher = List(Unicode(), config=True, help="Command that reaches the helper; default: helper_command().")

    _sandbox_dir: str | None = None
    _container: str | None = None

    async def _async_pre_start_kernel(self, **kw):  # type: ignore[override]
        self._sandbox_dir = tempfile.mkdtemp(prefix="donghaeng-kernel-")
        if os.geteuid() == 0:  # root's kernels run as the image's non-root user
            os.chown(self._sandbox_dir, GRADER_UID, GRADER_UID)
        self._container = f"{NAME_PREFIX}-{os.geteuid()}-{secrets.token_hex(6)}"
        self.transport = "ipc"
        self.ip = os.path.join(self._sandbox_dir, "k")
        self.connection_file = os.path.join(self._sandbox_dir, "kernel.json")
        self._work = os.path.abspath(str(kw.get("cwd") or os.getcwd()))
        started = await super()._async_pre_start_kernel(**kw)
        if os.geteuid() == 0:
            os.chown(self.connection_file, GRADER_UID, GRADER_UID)
        return started

    def format_kernel_cmd(self, extra_arguments=None):  # type: ignore[override]
        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd[1:3] != ["-m", "ipykernel_launcher"]:
            raise RuntimeError(f"only ipykernel kernels run in the grading container, not {cmd[:3]}")
        return [*(self.launcher or helper_command()), "run", "--name", self._container or "",
                "--image", self.image, "--workdir", self._work, "--sockets", self._sandbox_dir or "",
                "--memory-mb", str(self.memory_mb), "--processes", str(self.processes), "--cpus", str(self.cpus),
                "--cpu-seconds", str(self.cpu_seconds), "--file-mb", str(self.file_mb),
                "--open-files", str(self.open_files), "--", IMAGE_PYTHON, *cmd[1:]]

    async def _remove_container(self) -> None:
        """``docker rm -f``: killing the client process (sudo/docker run) would leave the container."""
        if self._container:
            proc = await asyncio.create_subprocess_exec(
                *(self.launcher or helper_command()), "rm", self._container,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await proc.wait()

    async def _async_kill_kernel(self, restart: bool = False) -> None:  # type: ignore[override]
        await self._remove_container()
        await super()._async_kill_kernel(restart=restart)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            await self._remove_container()
            self._container = None
            if self._sandbox_dir:
                shutil.rmtree(self._sandbox_dir, ignore_errors=True)
                self._sandbox_dir = None
