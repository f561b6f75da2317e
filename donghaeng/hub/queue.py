"""Class start, hub side: a polite queue for learners who come cold, and the services that prepare classes.

A cold start costs ~2 s of CPU, so 30 learners logging in at 9:00 on a 2-core VM cannot all start at
once.  Three pieces, all on JupyterHub's own mechanisms:

* :class:`SpawnQueue` — a spawner mixin (every mode) that lets ``spawn_concurrency`` servers start at
  once; the others wait in order and the spawn page shows "준비 중" with their place in the queue.
* the ``class-prepare`` service (:mod:`donghaeng.services.classprepare`, also ``donghaeng class prepare --course X``)
  starts a course's learners' servers ahead of class through the hub API, ``[class_start]
  prepare_minutes`` before each ``class_start`` in the courses' ``schedule.toml``.
* jupyterhub-idle-culler as a hub service, so prepared or forgotten servers are stopped when idle.
"""

from __future__ import annotations

import asyncio
import sys
from typing import ClassVar

from jupyterhub.utils import url_path_join, wait_for_http_server
from traitlets import HasTraits, Integer

from donghaeng.hub.services import managed_service, service_token
from donghaeng.common.settings import Settings

PREPARE_SERVICE = "class-prepare"
CULLER_SERVICE = "idle-culler"


class _Queue:
    """One FIFO gate for the whole hub process: who is starting, who waits (in arrival order)."""

    def __init__(self) -> None:
        self.limit = 0
        self.starting = 0
        self.waiting: list[asyncio.Future] = []

    def position(self, ticket: asyncio.Future) -> int | None:
        """1 = next to start; None = not waiting."""
        return self.waiting.index(ticket) + 1 if ticket in self.waiting else None

    async def enter(self, ticket: asyncio.Future) -> None:
        if self.starting < self.limit and not self.waiting:
            self.starting += 1
            return
        self.waiting.append(ticket)
        try:
            await ticket  # set by leave(); the slot is handed over, not re-counted
        finally:
            if ticket in self.waiting:
                self.waiting.remove(ticket)

    def leave(self) -> None:
        while self.waiting:
            ticket = self.waiting.pop(0)
            if not ticket.done():
                ticket.set_result(None)
                return
        self.starting -= 1


class SpawnQueue(HasTraits):
    """Spawner mixin: at most ``spawn_concurrency`` servers start at once; the rest queue politely."""

    spawn_concurrency = Integer(4, help="Servers the hub starts at once; later ones wait in order.").tag(config=True)

    _queue: ClassVar[_Queue] = _Queue()

    async def start(self):
        queue = SpawnQueue._queue
        queue.limit = self.spawn_concurrency
        self._ticket = asyncio.get_running_loop().create_future()
        await queue.enter(self._ticket)
        try:
            started = await super().start()
            # spawners return once the process/container runs; the costly part (a server importing
            # Jupyter, ~2 s of CPU) comes after, so the slot is kept until the server answers
            url = started if isinstance(started, str) else f"http://{started[0]}:{started[1]}"
            await wait_for_http_server(url_path_join(url, self.server.base_url), timeout=self.http_timeout)
            return started
        finally:
            queue.leave()

    def queue_position(self) -> int | None:
        ticket = getattr(self, "_ticket", None)
        return SpawnQueue._queue.position(ticket) if ticket is not None else None

    async def progress(self):
        await asyncio.sleep(0)  # let start() take its place in the queue first
        shown = None
        while (position := self.queue_position()) is not None:
            if position != shown:
                shown = position
                yield {"progress": 10, "message": queue_message(position)}
            await asyncio.sleep(0.5)
        yield {"progress": 40, "message": "실습실을 켜고 있어요… / Starting your server…"}
        async for event in super().progress():
            yield event


def queue_message(position: int) -> str:
    ahead = position - 1
    if ahead == 0:
        return "준비 중이에요. 곧 여러분 차례예요. / Getting ready: you are next."
    return (f"준비 중이에요. 앞에 {ahead}명이 기다리고 있어요. 이 화면을 그대로 두세요. / "
            f"Getting ready: {ahead} ahead of you in the queue.")


# --- hub services ---------------------------------------------------------------------------------

def prepare_token(settings: Settings) -> str:
    """The ``class-prepare`` service's API token."""
    return service_token(settings, PREPARE_SERVICE)


def cull_every(timeout: int) -> int:
    """How often the culler looks: a tenth of the timeout, at least every 10 seconds."""
    return max(10, timeout // 10)


def services(settings: Settings) -> list[dict]:
    """The idle culler (when a timeout is set) and the ``class-prepare`` service (schedule + command)."""
    token = prepare_token(settings)
    if settings.class_start.prepare_minutes:  # then it also runs, ahead of each scheduled class
        prepare = managed_service(settings, PREPARE_SERVICE, None, "donghaeng.services.classprepare", api_token=token)
    else:
        prepare = {"name": PREPARE_SERVICE, "api_token": token, "display": False}
    specs = [prepare]
    timeout = settings.class_start.idle_timeout
    if timeout:
        specs.append({
            "name": CULLER_SERVICE, "display": False,
            "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={timeout}",
                        f"--cull-every={cull_every(timeout)}"],
        })
    return specs


def roles(settings: Settings) -> list[dict]:
    """What the two services may do: start servers ahead of class; stop idle ones."""
    specs = [{"name": PREPARE_SERVICE, "description": "수업 전에 실습실을 미리 켜요", "services": [PREPARE_SERVICE],
              "scopes": ["list:users", "read:users", "admin:users", "servers"]}]
    if settings.class_start.idle_timeout:
        specs.append({"name": CULLER_SERVICE, "description": "오래 쉬는 실습실을 꺼요", "services": [CULLER_SERVICE],
                      "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
    return specs


def configure_spawner(c, settings: Settings) -> None:
    """Queue and generous start timeout (waiting in the queue counts towards it), in every mode."""
    c.Spawner.spawn_concurrency = settings.class_start.spawn_concurrency
    c.Spawner.start_timeout = 600
