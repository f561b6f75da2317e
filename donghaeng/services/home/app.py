"""The learner home: a hub-managed tornado service (hub OAuth) under ``/services/home/``.

Routes (under ``$JUPYTERHUB_SERVICE_PREFIX``):

* ``/``: my courses and modules with their state, deadline, estimated time and one start button;
* ``feedback/<course>/<assignment>/<notebook>``: the released feedback of my latest submission;
* ``notices/memory/read``: the learner has read the notice about their server killed for memory;
* ``help``: open help requests of the courses I teach (trainers and admins); ``help/<id>/done`` closes one;
* ``api/module/<course>/<assignment>`` and ``api/help``: called by learners' servers with their token.

It runs as root (the hub's user) because it reads learners' home folders and the course gradebooks;
it writes only its own help database in the lab's state folder.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web

from donghaeng.services import runtime as service_runtime
from donghaeng.common.cohort import Cohort
from donghaeng.services.home.help import HelpDesk
from donghaeng.common.settings import Settings, load_settings
from donghaeng.services.home.notices import READ_DB, ReadNotices, memory_kill
from donghaeng.services.home.progress import course_progress, deadline, feedback_html
from donghaeng.services.home.schedule import korean_time

TEMPLATES = Path(__file__).resolve().parent / "templates"
HELP_DB = "help.sqlite"


def start_url(hub_prefix: str, base_url: str, user: str, course: str, assignment: str) -> str:
    """Spawn (or reuse) the learner's server, then let it fetch and open the module."""
    target = url_path_join(base_url, "user", quote(user), "donghaeng", "open") + "?" + urlencode(
        {"course": course, "assignment": assignment})
    return url_path_join(hub_prefix, "spawn", quote(user)) + "?" + urlencode({"next": target})


class HomeHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def lab(self) -> Settings:
        return self.settings["lab_settings"]

    async def hub_model(self) -> dict:
        """This person's hub model (groups, servers with their state, stopped ones too), read with the
        service's own token."""
        name = self.current_user["name"]
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            response = await client.get(url_path_join(self.hub_auth.api_url, "users", quote(name)),
                                        params={"include_stopped_servers": "1"},
                                        headers={"Authorization": f"token {self.hub_auth.api_token}"})
        response.raise_for_status()
        return response.json()

    async def courses(self) -> tuple[list, list[str], dict]:
        """(my courses, ids of courses I teach, my hub model)."""
        model = await self.hub_model()
        groups = set(model.get("groups", []))
        mine = [c for c in self.lab.courses if f"nbgrader-{c.id}" in groups]
        teaching = [c.id for c in self.lab.courses if f"formgrade-{c.id}" in groups or "admin" in groups]
        return mine, teaching, model

    def page(self, template: str, **context) -> None:
        env = self.settings["jinja"]
        self.finish(env.get_template(template).render(
            prefix=self.settings["service_prefix"], hub_prefix=self.settings["hub_prefix"],
            xsrf_form_html=self.xsrf_form_html, **context))

    def write_error(self, status_code: int, **kwargs) -> None:
        messages = {403: "이 화면을 볼 수 있는 권한이 없어요.", 404: "찾는 화면이 없어요."}
        self.page("error.html", message=messages.get(status_code, "문제가 생겼어요. 잠시 뒤 다시 해 주세요."))


class MainHandler(HomeHandler):
    @web.authenticated
    async def get(self) -> None:
        name = self.current_user["name"]
        mine, teaching, model = await self.courses()
        server = model.get("servers", {}).get("")
        running = bool(server and server.get("ready"))
        account = await asyncio.to_thread(Cohort(self.lab.paths.cohort_db).get, name)
        courses = []
        for course in mine:
            modules = await asyncio.to_thread(course_progress, self.lab, course, name)
            for module in modules:
                module.start = start_url(self.settings["hub_prefix"], self.settings["base_url"], name,
                                         course.id, module.assignment)
            courses.append((course, modules))
        desk: HelpDesk = self.settings["help_desk"]
        started = any(m.state != "not_started" for _, modules in courses for m in modules)
        kill = memory_kill(server)
        notices: ReadNotices = self.settings["read_notices"]
        if kill and await asyncio.to_thread(notices.is_read, name, kill.notice):
            kill = None
        self.page("home.html", person=account.person.name if account else name, courses=courses,
                  running=running, resting=started and not running, teaching=teaching, korean_time=korean_time,
                  memory_kill=kill,
                  my_help=await asyncio.to_thread(desk.open_for_learner, name),
                  open_help=len(await asyncio.to_thread(desk.open_requests, teaching)))


FEEDBACK_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"


class FeedbackHandler(HomeHandler):
    @web.authenticated
    async def get(self, course_id: str, assignment: str, notebook: str) -> None:
        mine, _, _ = await self.courses()
        if course_id not in {c.id for c in mine}:
            raise web.HTTPError(404)
        html = await asyncio.to_thread(feedback_html, self.lab, course_id, self.current_user["name"],
                                       assignment, notebook)
        if html is None:
            raise web.HTTPError(404)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        # The page is learners' content (nbgrader's feedback HTML, sanitized when generated): no script
        # runs and it gets a unique origin, whatever slipped through; it needs its inline CSS and images.
        self.set_header("Content-Security-Policy", FEEDBACK_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(html)


class MemoryNoticeReadHandler(HomeHandler):
    @web.authenticated
    async def post(self) -> None:
        kill = memory_kill((await self.hub_model()).get("servers", {}).get(""))
        if kill:
            notices: ReadNotices = self.settings["read_notices"]
            await asyncio.to_thread(notices.mark_read, self.current_user["name"], kill.notice)
        self.redirect(self.settings["service_prefix"])


class HelpListHandler(HomeHandler):
    @web.authenticated
    async def get(self) -> None:
        _, teaching, _ = await self.courses()
        if not teaching:
            raise web.HTTPError(403)
        desk: HelpDesk = self.settings["help_desk"]
        titles = {c.id: c.title for c in self.lab.courses}
        accounts = await asyncio.to_thread(Cohort(self.lab.paths.cohort_db).accounts)
        self.page("help.html", requests=await asyncio.to_thread(desk.open_requests, teaching),
                  titles=titles, names={a.login: a.person.name for a in accounts},
                  korean_time=korean_time, done=self.get_argument("done", ""))


class HelpDoneHandler(HomeHandler):
    @web.authenticated
    async def post(self, request_id: str) -> None:
        _, teaching, _ = await self.courses()
        desk: HelpDesk = self.settings["help_desk"]
        if not await asyncio.to_thread(desk.mark_done, int(request_id), self.current_user["name"], teaching):
            raise web.HTTPError(403 if not teaching else 404)
        self.redirect(url_path_join(self.settings["service_prefix"], "help") + "?done=1")


class ApiHandler(HomeHandler):
    def write_error(self, status_code: int, **kwargs) -> None:
        self.finish({"message": {403: "권한이 없어요.", 404: "없는 과정이나 과제예요."}.get(status_code, "문제가 생겼어요.")})

    async def my_course(self, course_id: str):
        mine, _, _ = await self.courses()
        for course in mine:
            if course.id == course_id:
                return course
        raise web.HTTPError(404)


class ModuleApiHandler(ApiHandler):
    @web.authenticated
    async def get(self, course_id: str, assignment: str) -> None:
        course = await self.my_course(course_id)
        due = await asyncio.to_thread(deadline, self.lab, course, assignment)
        self.finish({"course": course.id, "assignment": assignment, "deadline": due.isoformat() if due else None})


class HelpApiHandler(ApiHandler):
    @web.authenticated
    async def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        course = await self.my_course(str(body.get("course", "")))
        cell = body.get("cell")
        desk: HelpDesk = self.settings["help_desk"]
        saved = await asyncio.to_thread(desk.ask, self.current_user["name"], course.id, str(body.get("notebook", "")),
                                        int(cell) if cell is not None else None, str(body.get("message", "")))
        self.finish({"id": saved.id, "asked_at": korean_time(saved.asked_at),
                     "message": "도움 요청을 보냈어요. 강사님이 곧 자리로 오실 거예요."})


def make_app(settings: Settings) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/home/")
    base_url = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    route = lambda path: url_path_join(prefix, path)  # noqa: E731
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    return web.Application([
        (prefix, MainHandler),
        (route("oauth_callback"), HubOAuthCallbackHandler),
        (route(r"feedback/([^/]+)/([^/]+)/([^/]+)"), FeedbackHandler),
        (route("notices/memory/read"), MemoryNoticeReadHandler),
        (route("help"), HelpListHandler),
        (route(r"help/(\d+)/done"), HelpDoneHandler),
        (route(r"api/module/([^/]+)/([^/]+)"), ModuleApiHandler),
        (route("api/help"), HelpApiHandler),
    ], lab_settings=settings, jinja=env, service_prefix=prefix, base_url=base_url,
        hub_prefix=url_path_join(base_url, "hub") + "/", help_desk=HelpDesk(settings.paths.state / HELP_DB),
        read_notices=ReadNotices(settings.paths.state / READ_DB),
        # HubOAuth checks the xsrf token of cookie-authenticated POSTs itself (and skips token-authenticated ones)
        cookie_secret=os.urandom(32))


def main() -> None:
    settings = load_settings()
    service_runtime.run("home", lambda: make_app(settings), default_port=8005)
