"""The ``class-prepare`` service: a course's learners' servers started before class, through the hub API.

Run by the hub ``[class_start] prepare_minutes`` before each ``class_start`` in the courses'
``schedule.toml`` (so nobody has to remember it at 8:50), and by ``donghaeng class prepare --course X``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from donghaeng.common.settings import Course, Settings, load_settings


@dataclass
class PrepareReport:
    ready: dict[str, float] = field(default_factory=dict)  # login -> seconds until ready
    failed: dict[str, str] = field(default_factory=dict)  # login -> why


async def prepare_servers(hub_api: str, token: str, logins: list[str], concurrency: int,
                          on_ready: Callable[[str], None] = lambda _: None, timeout: float = 600) -> PrepareReport:
    """Create the hub users if needed and start their servers, *concurrency* at a time."""
    report = PrepareReport()
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=hub_api, headers=headers, timeout=30) as http:

        async def one(login: str) -> None:
            async with gate:
                start = time.monotonic()
                try:
                    await _start_and_wait(http, login, timeout)
                    report.ready[login] = time.monotonic() - start
                    on_ready(login)
                except (httpx.HTTPError, RuntimeError, TimeoutError) as e:
                    report.failed[login] = str(e)

        await asyncio.gather(*(one(login) for login in logins))
    return report


async def _start_and_wait(http: httpx.AsyncClient, login: str, timeout: float) -> None:
    r = await http.get(f"/users/{login}")
    if r.status_code == 404:
        (await http.post(f"/users/{login}")).raise_for_status()
    r = await http.post(f"/users/{login}/server")
    if r.status_code not in (201, 202) and "already running" not in r.text:
        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model: dict[str, Any] = (await http.get(f"/users/{login}")).json()
        server = model["servers"].get("")
        if server and server["ready"]:
            return
        if not server and not model.get("pending"):
            raise RuntimeError("서버가 시작하지 못했어요 / the server failed to start (see the hub log)")
        await asyncio.sleep(0.5)
    raise TimeoutError(f"not ready after {timeout:.0f}s")


def course_learners(settings: Settings, course_id: str) -> list[str]:
    """The course's learners (role learner) from the cohort DB."""
    from donghaeng.common.cohort import Cohort

    return [a.login for a in Cohort(Path(settings.paths.cohort_db)).accounts()
            if a.person.role == "learner" and course_id in a.person.courses]


# --- the class-prepare service: servers started before each scheduled class -------------------------

LATE_PREPARE = timedelta(minutes=30)  # a hub restarted just after 9:00 still prepares the 9:00 class
CHECK_EVERY = 15  # seconds between two looks at the schedules (they may be edited at any time)


def due_classes(settings: Settings, now: datetime) -> list[tuple[Course, datetime]]:
    """Classes whose learners' servers should be running now: from ``prepare_minutes`` before the
    start until ``LATE_PREPARE`` after it.  A broken schedule file is reported and skipped."""
    from donghaeng.services.home.schedule import ScheduleError, load_schedule

    ahead = timedelta(minutes=settings.class_start.prepare_minutes)
    due = []
    for course in settings.courses:
        try:
            modules = load_schedule(settings, course).values()
        except ScheduleError as e:
            print(f"donghaeng class-prepare: {e}", flush=True)
            continue
        due.extend((course, m.class_start) for m in modules
                   if m.class_start and m.class_start - ahead <= now < m.class_start + LATE_PREPARE)
    return due


async def prepare_on_schedule(settings: Settings, hub_api: str, token: str) -> None:
    """Run forever: start each due class's learners' servers once (again after a restart: harmless)."""
    prepared: set[tuple[str, datetime]] = set()
    while True:
        for course, start in due_classes(settings, datetime.now(UTC)):
            if (course.id, start) in prepared:
                continue
            prepared.add((course.id, start))
            logins = course_learners(settings, course.id)
            print(f"donghaeng class-prepare: {course.id} class at {start.isoformat()}: "
                  f"starting {len(logins)} learners' servers", flush=True)
            report = await prepare_servers(hub_api, token, logins, settings.class_start.spawn_concurrency)
            print(f"donghaeng class-prepare: {course.id}: ready {len(report.ready)}, failed {len(report.failed)} "
                  + " ".join(f"{login} ({why})" for login, why in report.failed.items()), flush=True)
        await asyncio.sleep(CHECK_EVERY)


if __name__ == "__main__":  # the hub-managed class-prepare service
    asyncio.run(prepare_on_schedule(load_settings(), os.environ["JUPYTERHUB_API_URL"],
                                    os.environ["JUPYTERHUB_API_TOKEN"]))
