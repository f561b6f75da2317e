"""The trainer dashboard: a tornado app JupyterHub runs as the managed service ``dashboard``.

Pages (under ``$JUPYTERHUB_SERVICE_PREFIX``, e.g. ``/services/dashboard/``), all behind hub OAuth:

* ``/``                                   the courses this person may see
* ``courses/<id>``                        progress table, who is at risk, grading queue, plots, certificates
* ``courses/<id>/plots/<assignment>.svg`` score distribution (also ``.png``)
* ``courses/<id>/export.csv`` / ``.xlsx`` the progress table, safe against formula injection
* ``courses/<id>/certify``                GET: confirmation page; POST (XSRF): issue or revoke
* ``courses/<id>/teachback?login=``       GET: form; POST (XSRF): a trainer records a candidate's live teach-back
* ``calibration`` / ``calibration/<set>`` rubric calibration (trainer candidates grade samples, limited tries)
* ``metrics``                             grading's Prometheus metrics (a token with ``read:metrics``)

Who sees what: admins every course, trainers the courses of their ``formgrade-<course>`` groups;
learners of a course that needs a calibration kappa reach only the calibration pages.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from markupsafe import Markup
from tornado import web

from donghaeng.services import certification, runtime as service_runtime
from donghaeng.services.metrics import GradingMetricsHandler
from donghaeng.services.certification import CertificationError, Store, TeachBackRecord, load_policy
from donghaeng.services.certification.store import CalibrationAttempt, now
from donghaeng.common.roster import Person
from donghaeng.common.settings import Course, Settings, load_settings
from donghaeng.services.dashboard import calibration, export, plots
from donghaeng.services.dashboard.hub import STAFF_GROUPS, calibration_courses
from donghaeng.services.dashboard.progress import CourseReport, State, build_report, course_learners, local_time

log = logging.getLogger("donghaeng.services.dashboard")
TEMPLATES = Path(__file__).parent / "templates"
ERROR_TITLES = {403: "이 페이지는 열 수 없어요", 404: "페이지를 찾을 수 없어요", 400: "요청을 처리할 수 없어요"}
ACTIONS = {"issue": "발급", "revoke": "취소"}
NOTE_MAX_CHARS = 1000


@dataclass(frozen=True)
class Viewer:
    """The signed-in person and what they may see."""

    name: str
    staff: bool  # trainer or admin: the cohort pages
    courses: tuple[str, ...]  # courses whose cohort they see
    candidate: bool  # may do the rubric calibration


class Dashboard:
    """Settings, templates and hub access shared by every handler."""

    def __init__(self, settings: Settings, hub_auth: HubOAuth, prefix: str) -> None:
        self.settings = settings
        self.hub_auth = hub_auth
        self.prefix = prefix
        self.calibration_courses = calibration_courses(settings)
        self.rubrics = calibration.load_sets()
        self.policy = load_policy(settings)
        self.levels = self.policy.levels
        self.templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
        self.templates.filters["local_time"] = local_time

    async def hub_get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            r = await client.get(f"{self.hub_auth.api_url}{path}", params=params, headers={
                "Authorization": f"token {self.hub_auth.api_token}",
                "Accept": "application/jupyterhub-pagination+json"})
        r.raise_for_status()
        return r.json()

    async def last_activity(self) -> dict[str, datetime | None]:
        """Every hub user's last activity (the hub API pages its answer)."""
        activity: dict[str, datetime | None] = {}
        offset = 0
        while True:
            page = await self.hub_get("/users", offset=offset, limit=200)
            for user in page["items"]:
                stamp = user.get("last_activity")
                activity[user["name"]] = datetime.fromisoformat(stamp) if stamp else None
            following = (page.get("_pagination") or {}).get("next")
            if not following:
                return activity
            offset = following["offset"]

    async def viewer(self, name: str) -> Viewer:
        user = await self.hub_get(f"/users/{name}")
        groups = set(user.get("groups") or ())
        admin = bool(user.get("admin")) or "admin" in groups
        if admin:
            courses = tuple(c.id for c in self.settings.courses)
        else:
            courses = tuple(c.id for c in self.settings.courses if f"formgrade-{c.id}" in groups)
        staff = admin or bool(groups & set(STAFF_GROUPS))
        candidate = staff or any(f"nbgrader-{c}" in groups for c in self.calibration_courses)
        return Viewer(name, staff, courses if staff else (), candidate)

    async def report(self, course: Course) -> CourseReport:
        activity = await self.last_activity()
        cfg = self.settings.dashboard
        return await asyncio.to_thread(build_report, self.settings, course, activity,
                                       inactive_days=cfg.inactive_days, failing_below=cfg.failing_below)


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    viewer: Viewer

    def initialize(self, dash: Dashboard) -> None:
        self.dash = dash
        self.hub_auth = dash.hub_auth

    async def prepare(self) -> None:
        user = self.current_user  # None: @web.authenticated sends them to the hub's login
        if user is not None:
            self.viewer = await self.dash.viewer(user["name"])

    def url(self, *parts: str, **query: str) -> str:
        path = self.dash.prefix + "/".join(parts)
        return f"{path}?{urlencode(query)}" if query else path

    def render_page(self, template: str, http_status: int = 200, **context: Any) -> None:
        self.set_status(http_status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
        page = self.dash.templates.get_template(template).render(
            viewer=getattr(self, "viewer", None), url=self.url, hub_prefix=self.dash.hub_auth.hub_prefix,
            xsrf=Markup(self.xsrf_form_html()), **context)
        self.finish(page)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        self.render_page("error.html", http_status=status_code, title=ERROR_TITLES.get(status_code, "문제가 생겼어요"),
                         message=message, status_code=status_code)

    def need_staff(self) -> None:
        if not self.viewer.staff:
            raise web.HTTPError(403, "트레이너와 관리자만 볼 수 있어요.")

    def course(self, course_id: str) -> Course:
        """The course, if this person may see its cohort (else 403, also for unknown ids)."""
        self.need_staff()
        if course_id not in self.viewer.courses:
            raise web.HTTPError(403, "내가 맡은 과정만 볼 수 있어요.")
        return self.dash.settings.course(course_id)


class IndexHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        if not self.viewer.staff:
            if self.viewer.candidate:
                self.redirect(self.url("calibration"))
                return
            self.need_staff()
        courses = [self.dash.settings.course(c) for c in self.viewer.courses]
        self.render_page("index.html", courses=courses)


class CourseHandler(BaseHandler):
    @web.authenticated
    async def get(self, course_id: str) -> None:
        course = self.course(course_id)
        report = await self.dash.report(course)
        logins = {row.person.login for row in report.learners}
        statuses = [s for s in await asyncio.to_thread(certification.evaluate, self.dash.settings)
                    if s.login in logins]
        levels = [lv for lv in self.dash.levels if lv.course == course.id]
        teachback = None
        if any(lv.min_teachback_checklist is not None for lv in levels):
            store = Store.of(self.dash.settings)
            teachback = [(row.person, store.teachback(row.person.login, course.id)) for row in report.learners]
        self.render_page("course.html", course=course, report=report, State=State, levels=levels,
                         statuses=statuses, describe=plots.describe, done=self.get_argument("done", ""),
                         teachback=teachback)


class PlotHandler(BaseHandler):
    @web.authenticated
    async def get(self, course_id: str, assignment: str, fmt: str) -> None:
        course = self.course(course_id)
        report = await self.dash.report(course)
        if assignment not in report.assignments:
            raise web.HTTPError(404, f"'{assignment}' 과제가 없어요.")
        image = await asyncio.to_thread(plots.distribution, assignment, report.percents(assignment),
                                        report.failing_below, fmt)
        self.set_header("Content-Type", plots.FORMATS[fmt])
        self.set_header("Cache-Control", "no-store")
        self.finish(image)


class ExportHandler(BaseHandler):
    @web.authenticated
    async def get(self, course_id: str, fmt: str) -> None:
        course = self.course(course_id)
        rows = export.table(await self.dash.report(course))
        stamp = datetime.now().strftime("%Y%m%d")
        if fmt == "csv":
            body, mime = export.to_csv(rows), "text/csv; charset=utf-8"
        else:
            body = export.to_xlsx(rows, course.id)
            mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        self.set_header("Content-Type", mime)
        self.set_header("Content-Disposition", f'attachment; filename="{course.id}-progress-{stamp}.{fmt}"')
        self.finish(body)


class CertifyHandler(BaseHandler):
    """One-click issue or revoke: GET shows what will happen, the POST of that page does it."""

    def _target(self, course: Course) -> tuple[str, Any, Any]:
        action = self.get_argument("action")
        if action not in ACTIONS:
            raise web.HTTPError(400, "알 수 없는 작업이에요.")
        login = self.get_argument("login")
        status = next((s for s in certification.evaluate(self.dash.settings, login)
                       if course.id in s.courses and s.role == "learner"), None)
        if status is None:
            raise web.HTTPError(403, "내 과정의 학습자에게만 발급하거나 취소할 수 있어요.")
        if action == "issue":
            level = next((lv for lv in self.dash.levels if lv.id == self.get_argument("level")
                          and lv.course == course.id), None)
            if level is None:
                raise web.HTTPError(400, "이 과정에 없는 단계예요.")
            return action, status, level
        serial = self.get_argument("serial")
        own_levels = {lv.id for lv in self.dash.levels if lv.course == course.id}
        cert = next((c for c in status.certificates
                     if c.serial == serial and not c.revoked and c.level in own_levels), None)
        if cert is None:
            raise web.HTTPError(400, "취소할 수 있는 수료증이 아니에요.")
        return action, status, cert

    @web.authenticated
    async def get(self, course_id: str) -> None:
        course = self.course(course_id)
        action, status, target = self._target(course)
        self.render_page("confirm.html", course=course, action=action, label=ACTIONS[action], learner=status,
                         target=target, error="")

    @web.authenticated
    async def post(self, course_id: str) -> None:
        course = self.course(course_id)
        action, status, target = self._target(course)
        try:
            if action == "issue":
                await asyncio.to_thread(certification.issue, self.dash.settings, status.login, target.id,
                                        self.viewer.name)
            else:
                reason = self.get_argument("reason", "").strip()
                if not reason:
                    raise CertificationError("취소하는 까닭을 적어 주세요.")
                await asyncio.to_thread(certification.revoke, self.dash.settings, target.serial,
                                        self.viewer.name, reason)
        except CertificationError as exc:
            self.render_page("confirm.html", http_status=400, course=course, action=action,
                             label=ACTIONS[action], learner=status, target=target, error=str(exc))
            return
        log.info("%s: %s %s for %s", self.viewer.name, action, getattr(target, "id", getattr(target, "serial", "")),
                 status.login)
        self.redirect(self.url("courses", course.id, done=f"{action}:{status.login}") + "#certification")


class TeachBackHandler(BaseHandler):
    """A course's trainer records what they saw at a candidate's live teach-back (date, attendance, checklist)."""

    def _target(self, course: Course) -> Person:
        if self.dash.policy.teachback is None:
            raise web.HTTPError(404, "수료 기준에 시범 강의 점검표([teachback])가 없어요.")
        login = self.get_argument("login", "")
        person = next((p for p in course_learners(self.dash.settings, course.id) if p.login == login), None)
        if person is None:
            raise web.HTTPError(403, "내 과정의 학습자만 기록할 수 있어요.")
        return person

    def _form(self, course: Course, person: Person, http_status: int = 200, error: str = "", **values: Any) -> None:
        last = Store.of(self.dash.settings).teachback(person.login, course.id)
        self.render_page("teachback_form.html", http_status=http_status, course=course, person=person, last=last,
                         checklist=self.dash.policy.teachback.checklist, error=error, note_max=NOTE_MAX_CHARS,
                         today=date.today().isoformat(), values=values)

    @web.authenticated
    async def get(self, course_id: str) -> None:
        course = self.course(course_id)
        self._form(course, self._target(course))

    @web.authenticated
    async def post(self, course_id: str) -> None:
        course = self.course(course_id)
        person = self._target(course)
        checklist = self.dash.policy.teachback.checklist
        day, attended = self.get_argument("session_date", "").strip(), self.get_argument("attended", "")
        checked = [item.id for item in checklist if self.get_argument(f"item-{item.id}", "") == "on"]
        note = self.get_argument("note", "").strip()
        values = {"session_date": day, "attended": attended, "checked": checked, "note": note}
        try:
            session = date.fromisoformat(day)
        except ValueError:
            self._form(course, person, 400, "시범 강의 날짜를 골라 주세요 (예: 2027-04-09).", **values)
            return
        if session > date.today():
            self._form(course, person, 400, "아직 오지 않은 날짜예요. 시범 강의를 본 날을 골라 주세요.", **values)
            return
        if attended not in ("yes", "no"):
            self._form(course, person, 400, "출석했는지 골라 주세요.", **values)
            return
        if len(note) > NOTE_MAX_CHARS:
            self._form(course, person, 400, f"메모는 {NOTE_MAX_CHARS}자까지 써 주세요 (지금 {len(note)}자).", **values)
            return
        present = attended == "yes"
        record = TeachBackRecord(person.login, course.id, session.isoformat(), present,
                                 tuple(checked) if present else (), len(checked) if present else 0,
                                 len(checklist), note, now(), self.viewer.name)
        await asyncio.to_thread(Store.of(self.dash.settings).record_teachback, record)
        log.info("%s: teach-back of %s recorded (%s/%s)", self.viewer.name, person.login, record.score,
                 record.max_score)
        self.redirect(self.url("courses", course.id, done=f"teachback:{person.login}") + "#teachback")


class CalibrationHandler(BaseHandler):
    def _rubric(self, rubric_id: str) -> calibration.RubricSet:
        if not self.viewer.candidate:
            raise web.HTTPError(403, "채점 맞추기는 TTT 과정 학습자와 트레이너만 할 수 있어요.")
        rubric = self.dash.rubrics.get(rubric_id)
        if rubric is None:
            raise web.HTTPError(404, "그런 채점 연습이 없어요.")
        return rubric

    def _next(self, rubric: calibration.RubricSet) -> calibration.Next:
        rules = self.dash.policy.calibration
        upcoming = calibration.next_attempt(self.dash.settings, rubric, self.viewer.name, allowed=rules.attempts,
                                            size=rules.samples_per_attempt)
        if upcoming is None:
            raise web.HTTPError(403, f"「{rubric.title}」 채점 맞추기 기회({rules.attempts}번)를 모두 썼어요. "
                                     "기회가 더 필요하면 트레이너와 이야기해 주세요.")
        return upcoming

    def _standing(self, login: str) -> list[tuple[calibration.RubricSet, list[CalibrationAttempt]]]:
        store = Store.of(self.dash.settings)
        return [(rubric, store.calibration_attempts(login, rubric.id)) for rubric in self.dash.rubrics.values()]

    @web.authenticated
    async def get(self, rubric_id: str = "") -> None:
        if rubric_id:
            rubric = self._rubric(rubric_id)
            upcoming = self._next(rubric)
            self.render_page("calibration_form.html", rubric=rubric, upcoming=upcoming, chosen={}, error="",
                             allowed=self.dash.policy.calibration.attempts, field=calibration.field_name)
            return
        if not self.viewer.candidate:
            raise web.HTTPError(403, "채점 맞추기는 TTT 과정 학습자와 트레이너만 할 수 있어요.")
        results = []
        if self.viewer.staff:  # trainers see their candidates' attempts
            people = {p.login: p for c in self.viewer.courses if c in self.dash.calibration_courses
                      for p in course_learners(self.dash.settings, c)}
            results = [(people[login], self._standing(login)) for login in sorted(people)]
        self.render_page("calibration.html", mine=self._standing(self.viewer.name), results=results,
                         allowed=self.dash.policy.calibration.attempts, label=calibration.agreement_label)

    @web.authenticated
    async def post(self, rubric_id: str) -> None:
        rubric = self._rubric(rubric_id)
        upcoming = self._next(rubric)
        chosen: dict[str, int] = {}
        for sample in upcoming.samples:
            for criterion in rubric.criteria:
                name = calibration.field_name(sample, criterion)
                value = self.get_argument(name, "")
                if value.isdigit():
                    chosen[name] = int(value)
        try:
            result = calibration.grade(rubric, self.viewer.name, upcoming.attempt, upcoming.samples, chosen)
            await asyncio.to_thread(calibration.record, self.dash.settings, result, self.viewer.name)
        except (calibration.CalibrationError, CertificationError) as exc:
            self.render_page("calibration_form.html", http_status=400, rubric=rubric, upcoming=upcoming,
                             chosen=chosen, error=str(exc), allowed=self.dash.policy.calibration.attempts,
                             field=calibration.field_name)
            return
        self.render_page("calibration_result.html", rubric=rubric, result=result,
                         left=self.dash.policy.calibration.attempts - result.attempt,
                         minimum=self._minimum_kappa())

    def _minimum_kappa(self) -> float | None:
        kappas = [lv.min_calibration_kappa for lv in self.dash.levels if lv.min_calibration_kappa is not None]
        return max(kappas, default=None)


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        raise web.HTTPError(404)


def make_app(settings: Settings, hub_auth: HubOAuth | None = None) -> web.Application:
    # the one instance HubOAuthCallbackHandler also uses: it keeps the OAuth states (PKCE verifiers)
    hub_auth = hub_auth or HubOAuth.instance(cache_max_age=60)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/dashboard/")
    dash = Dashboard(settings, hub_auth, prefix)
    course = r"courses/([a-z0-9-]+)"
    routes = [
        (r"", IndexHandler),
        (course, CourseHandler),
        (course + r"/plots/([^/]+)\.(png|svg)", PlotHandler),
        (course + r"/export\.(csv|xlsx)", ExportHandler),
        (course + r"/certify", CertifyHandler),
        (course + r"/teachback", TeachBackHandler),
        (r"calibration", CalibrationHandler),
        (r"calibration/([a-z0-9-]+)", CalibrationHandler),
    ]
    handlers: list[tuple] = [(prefix + pattern, handler, {"dash": dash}) for pattern, handler in routes]
    handlers.append((prefix + "oauth_callback", HubOAuthCallbackHandler))
    # grading's Prometheus metrics, for the `prometheus` service's token (donghaeng.services.metrics)
    handlers.append((prefix + "metrics", GradingMetricsHandler, {"settings": settings, "hub_auth": hub_auth}))
    return web.Application(handlers, cookie_secret=os.urandom(32), xsrf_cookies=True,
                           default_handler_class=NotFoundHandler, default_handler_args={"dash": dash})


def main() -> None:
    settings = load_settings()
    service_runtime.run("dashboard", lambda: make_app(settings), xheaders=True, default_port=8004)
