"""The gate: a level that unlocks a course enrols the learner in it, and revoking the level takes it away.

The cohort database is the source of truth (the authenticator recomputes hub groups from it at every
login and refresh).  The hub REST API call only makes the change visible at once, e.g. in the course
list of a server that is already running; when the hub is down or the learner has never logged in,
the cohort change alone applies at their next login.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from donghaeng.common.cohort import Cohort
from donghaeng.grading.courses import CourseRunner, NbgraderError
from donghaeng.hub.services import service_token
from donghaeng.common.settings import Settings
from donghaeng.services.certification.store import Store

log = logging.getLogger(__name__)
GATE_SERVICE = "certification-gate"


def ensure_token(settings: Settings) -> str:
    """The gate's hub API token (registered with the hub as the gate service's token)."""
    return service_token(settings, GATE_SERVICE)


@dataclass(frozen=True)
class GateChange:
    course: str
    cohort_changed: bool
    hub: str  # what happened at the hub, for the audit log


class HubGroups:
    """Membership of ``nbgrader-<course>`` groups through the hub REST API, with the gate's token."""

    def __init__(self, settings: Settings) -> None:
        self.http = httpx.Client(
            base_url=settings.hub_api_url,
            headers={"Authorization": f"token {ensure_token(settings)}"}, timeout=15)

    def _members(self, method: str, course: str, login: str) -> httpx.Response:
        return self.http.request(method, f"/groups/nbgrader-{course}/users", json={"users": [login]})

    def add(self, course: str, login: str) -> str:
        r = self._members("POST", course, login)
        if r.status_code == 404 and "group" in r.text.lower():  # nobody in the course yet: create the group
            self.http.post(f"/groups/nbgrader-{course}").raise_for_status()
            r = self._members("POST", course, login)
        if r.status_code in (400, 404):  # never logged in: the cohort applies at their first login
            return "hub: user not there yet, applies at first login"
        r.raise_for_status()
        return "hub: added"

    def remove(self, course: str, login: str) -> str:
        r = self._members("DELETE", course, login)
        if r.status_code in (400, 404):
            return "hub: nothing to remove"
        r.raise_for_status()
        return "hub: removed"


def _apply(settings: Settings, action, course: str, login: str) -> str:
    try:
        groups = HubGroups(settings)
        with groups.http:
            return action(groups, course, login)
    except httpx.HTTPError as e:
        log.warning("hub not reachable for %s %s: %s", login, course, e)
        return f"hub not reachable ({type(e).__name__}): applies at next login"


def open_gate(settings: Settings, login: str, course: str, *, actor: str, level: str) -> GateChange:
    """Enrol *login* in *course* (cohort, hub group, gradebook); safe to repeat."""
    cohort = Cohort(settings.paths.cohort_db)
    changed = cohort.grant_course(login, course, reason=f"certification:{level}")
    hub = _apply(settings, HubGroups.add, course, login)
    account = cohort.get(login)
    runner = CourseRunner(settings, settings.course(course))
    if account and (runner.root / "nbgrader_config.py").exists():
        try:
            runner.sync_students([account.person])
        except NbgraderError as e:  # the gradebook catches up at the next roster import
            hub += f"; gradebook not updated: {e}"
    with Store.of(settings).connect() as db:
        Store.log(db, actor, "gate-open", login=login, level=level,
                  detail=f"course={course}; cohort={'granted' if changed else 'already'}; {hub}")
    return GateChange(course, changed, hub)


def close_gate(settings: Settings, login: str, course: str, *, actor: str, level: str) -> GateChange:
    """Take *course* away again, unless the roster itself enrols *login* in it."""
    cohort = Cohort(settings.paths.cohort_db)
    changed = cohort.withdraw_course(login, course)
    account = cohort.get(login)
    if account and course in account.person.courses:
        hub = "hub: kept (the roster enrols them in this course)"
    else:
        hub = _apply(settings, HubGroups.remove, course, login)
    with Store.of(settings).connect() as db:
        Store.log(db, actor, "gate-close", login=login, level=level,
                  detail=f"course={course}; cohort={'withdrawn' if changed else 'nothing granted'}; {hub}")
    return GateChange(course, changed, hub)
