"""The exchange service: a hub-managed tornado app under ``/services/exchange/`` (hub-token auth).

Who is asking comes only from their hub token (``HubAuth.user_for_token``), never from the request:
learners of a course are members of ``nbgrader-<course>``, its trainers of ``formgrade-<course>``, and
its grader is the hub service ``grader-<course>``.

Routes (under ``$JUPYTERHUB_SERVICE_PREFIX``; archives are uncompressed tar, see ``archive.py``):

* ``GET /``: health check for the hub (no token);
* ``GET api/limits``: what a submission may hold;
* ``GET api/released?course=&assignment=``: released assignments of my courses;
* ``GET|PUT|DELETE api/courses/<c>/assignments/<a>``: fetch / release (grader, trainer; ``?force=1``) / unrelease;
* ``POST api/courses/<c>/submissions/<a>?strict=1``: submit as myself, stamped with the service's clock;
* ``GET api/submissions?course=&assignment=&student=``: my submissions (the grader: everyone's);
* ``GET api/courses/<c>/submission?id=``: one submission's files (the grader, to collect);
* ``PUT api/courses/<c>/feedback?student=&assignment=&timestamp=&notebook=``: release feedback (the grader);
* ``GET api/courses/<c>/feedback?assignment=``: my own released feedback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jupyterhub.services.auth import HubAuth
from jupyterhub.utils import url_path_join
from tornado import web

from donghaeng.services import runtime as service_runtime
from donghaeng.services.exchange.archive import ArchiveRefused, Limits
from donghaeng.services.exchange.config import ServiceConfig
from donghaeng.services.exchange.store import ID, Store, StoreError

log = logging.getLogger("donghaeng.services.exchange")

MSG_NO_TOKEN = "로그인 정보(토큰)가 없거나 맞지 않아요. 실습실을 다시 열어 주세요."
MSG_FORBIDDEN = "이 과정에서 그 일을 할 권한이 없어요."
MSG_BAD_ID = "과정이나 과제 이름이 올바르지 않아요."
MSG_TOO_BIG = "보낸 파일이 너무 커요(최대 {limit}). 큰 파일은 지우고 다시 해 주세요."
MSG_FAILED = "과제 교환 서비스에 문제가 생겼어요. 잠시 뒤 다시 해 주세요."

Role = Literal["learner", "trainer", "grader"]


@dataclass(frozen=True)
class Caller:
    """Who a hub token belongs to, and what they are in each course."""

    name: str
    kind: str  # "user" or "service"
    groups: frozenset[str]

    def roles(self, course: str) -> set[Role]:
        if self.kind == "service":
            return {"grader"} if self.name == f"grader-{course}" else set()
        roles: set[Role] = set()
        if f"nbgrader-{course}" in self.groups:
            roles.add("learner")
        if f"formgrade-{course}" in self.groups:
            roles.add("trainer")
        return roles


class ApiHandler(web.RequestHandler):
    caller: Caller

    @property
    def store(self) -> Store:
        return self.settings["store"]

    @property
    def config(self) -> ServiceConfig:
        return self.settings["exchange_config"]

    def check_xsrf_cookie(self) -> None:
        """Token-only API: no cookies are read, so there is nothing to forge."""

    async def prepare(self) -> None:
        auth: HubAuth = self.settings["hub_auth"]
        header = self.request.headers.get("Authorization", "")
        token = header.split(None, 1)[1].strip() if header.lower().startswith(("token ", "bearer ")) else ""
        model = await auth.user_for_token(token, sync=False) if token else None
        if not model or not auth.check_scopes(auth.access_scopes, model):
            raise web.HTTPError(403, reason="no token")
        self.caller = Caller(model["name"], model.get("kind", "user"), frozenset(model.get("groups") or ()))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, (StoreError, ArchiveRefused)):
            message = str(error)
        elif status_code == 403:
            message = MSG_NO_TOKEN if getattr(self, "caller", None) is None else MSG_FORBIDDEN
        elif isinstance(error, web.HTTPError) and error.log_message:
            message = error.log_message
        else:
            message = MSG_FAILED
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}, ensure_ascii=False))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, StoreError):
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
        elif isinstance(e, ArchiveRefused):
            self.send_error(422, exc_info=(type(e), e, e.__traceback__))
        else:
            super()._handle_request_exception(e)

    def course(self, course: str, *allowed: Role) -> str:
        """*course* when it exists and the caller has one of the *allowed* roles there, else 403."""
        if course not in self.config.courses:
            raise web.HTTPError(404, MSG_BAD_ID)
        if not self.caller.roles(course) & set(allowed):
            raise web.HTTPError(403, MSG_FORBIDDEN)
        return course

    def my_courses(self, course: str, *allowed: Role) -> list[str]:
        """The courses asked for (one, or all when *course* is empty) where the caller has an *allowed* role."""
        if course:
            return [self.course(course, *allowed)]
        return [c for c in self.config.courses if self.caller.roles(c) & set(allowed)]

    @staticmethod
    def identifier(value: str) -> str:
        if not ID.match(value) or "+" in value:
            raise web.HTTPError(400, MSG_BAD_ID)
        return value

    async def send_archive(self, write) -> None:
        """Run *write(file)* in a thread into a temporary file, then send it as a tar."""
        with tempfile.TemporaryFile(dir=self.store.incoming) as f:
            await asyncio.to_thread(write, f)
            f.seek(0)
            self.set_header("Content-Type", "application/x-tar")
            while chunk := f.read(1 << 16):
                self.write(chunk)
                await self.flush()
        self.finish()


@web.stream_request_body
class UploadHandler(ApiHandler):
    """Receives an archive into a spooled file, counting bytes against the limits' wire size."""

    limits: Limits

    async def prepare(self) -> None:
        await super().prepare()
        self.limits = Limits(**(self.config.release if self.request.method == "PUT" else self.config.submission))
        cap = self.limits.body_bytes()
        length = int(self.request.headers.get("Content-Length") or 0)
        if length > cap:
            raise web.HTTPError(413, MSG_TOO_BIG.format(limit=f"{self.limits.max_total_bytes >> 20} MB"))
        self.request.connection.set_max_body_size(cap)
        self.store.incoming.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.body = tempfile.SpooledTemporaryFile(max_size=8 << 20, dir=self.store.incoming)

    def data_received(self, chunk: bytes) -> None:
        self.body.write(chunk)

    def on_finish(self) -> None:
        if hasattr(self, "body"):
            self.body.close()

    def received(self):
        self.body.seek(0)
        return self.body


class HealthHandler(web.RequestHandler):
    """The hub's service health check (no token, nothing to read)."""

    def get(self) -> None:
        self.finish({"service": "exchange"})


class LimitsHandler(ApiHandler):
    def get(self) -> None:
        self.finish({"submission": self.config.submission, "release": self.config.release})


class ReleasedHandler(ApiHandler):
    def get(self) -> None:
        courses = self.my_courses(self.get_argument("course", ""), "learner", "trainer", "grader")
        assignment = self.get_argument("assignment", "")
        found = [a for c in courses for a in self.store.released(c) if not assignment or a["assignment_id"] == assignment]
        self.finish(json.dumps(found))


class AssignmentHandler(UploadHandler):
    async def get(self, course: str, assignment: str) -> None:
        course = self.course(course, "learner", "trainer", "grader")
        assignment = self.identifier(assignment)
        await self.send_archive(lambda f: self.store.release_archive(course, assignment, f))

    async def put(self, course: str, assignment: str) -> None:
        course = self.course(course, "trainer", "grader")
        assignment = self.identifier(assignment)
        force = self.get_argument("force", "") == "1"
        files = await asyncio.to_thread(self.store.release, course, assignment, self.received(), self.limits, force)
        log.info("%s released %s/%s (%d files)", self.caller.name, course, assignment, len(files))
        self.finish({"files": files})

    async def delete(self, course: str, assignment: str) -> None:
        course = self.course(course, "trainer", "grader")
        await asyncio.to_thread(self.store.unrelease, course, self.identifier(assignment))
        log.info("%s removed the release of %s/%s", self.caller.name, course, assignment)
        self.finish({})


class SubmitHandler(UploadHandler):
    async def post(self, course: str, assignment: str) -> None:
        course = self.course(course, "learner", "trainer")
        assignment = self.identifier(assignment)
        if self.caller.kind != "user":
            raise web.HTTPError(403, MSG_FORBIDDEN)
        strict = self.get_argument("strict", "") == "1"
        receipt = await asyncio.to_thread(self.store.submit, course, assignment, self.caller.name, self.received(),
                                          self.limits, strict)
        log.info("%s submitted %s/%s at %s", self.caller.name, course, assignment, receipt["timestamp"])
        self.finish(receipt)


class SubmissionsHandler(ApiHandler):
    def get(self) -> None:
        """A learner or trainer sees their own submissions; the grader sees the course's."""
        found = []
        for course in self.my_courses(self.get_argument("course", ""), "learner", "trainer", "grader"):
            everyone = "grader" in self.caller.roles(course)
            student = self.get_argument("student", "") if everyone else self.caller.name
            found.extend(self.store.submissions(course, self.get_argument("assignment", "") or None, student or None))
        self.finish(json.dumps(found))


class SubmissionHandler(ApiHandler):
    async def get(self, course: str) -> None:
        course = self.course(course, "grader")
        submission = self.get_argument("id")
        await self.send_archive(lambda f: self.store.submission_archive(course, submission, f))


class FeedbackHandler(ApiHandler):
    async def put(self, course: str) -> None:
        course = self.course(course, "grader")
        args = {k: self.get_argument(k) for k in ("student", "assignment", "timestamp", "notebook")}
        if len(self.request.body) > Limits(**self.config.submission).max_file_bytes:
            raise web.HTTPError(413, MSG_TOO_BIG.format(limit="feedback"))
        await asyncio.to_thread(self.store.release_feedback, course, args["student"], self.identifier(args["assignment"]),
                                args["timestamp"], args["notebook"], self.request.body)
        self.finish({})

    async def get(self, course: str) -> None:
        course = self.course(course, "learner", "trainer")
        assignment = self.get_argument("assignment", "")
        assignment = self.identifier(assignment) if assignment else None
        await self.send_archive(lambda f: self.store.feedback_archive(course, self.caller.name, assignment, f))


def make_app(config: ServiceConfig, prefix: str) -> web.Application:
    auth = HubAuth(cache_max_age=60)
    store = Store(Path(config.store))
    part = r"([^/]+)"
    api = url_path_join(prefix, "api")
    return web.Application([
        (prefix, HealthHandler),
        (url_path_join(api, "limits"), LimitsHandler),
        (url_path_join(api, "released"), ReleasedHandler),
        (url_path_join(api, "submissions"), SubmissionsHandler),
        (url_path_join(api, "courses", part, "assignments", part), AssignmentHandler),
        (url_path_join(api, "courses", part, "submissions", part), SubmitHandler),
        (url_path_join(api, "courses", part, "submission"), SubmissionHandler),
        (url_path_join(api, "courses", part, "feedback"), FeedbackHandler),
    ], hub_auth=auth, store=store, exchange_config=config)


def main() -> None:
    """Listen on the service's URL, and on loopback for the graders' processes on this host."""
    config = ServiceConfig.from_env()
    log.info("exchange store %s", config.store)
    # uploads are streamed and capped per request (UploadHandler); max_body_size is only the outer bound
    service_runtime.run("exchange", lambda: make_app(config, os.environ["JUPYTERHUB_SERVICE_PREFIX"]),
                        hosts=["127.0.0.1"], max_body_size=Limits(**config.release).body_bytes(),
                        max_buffer_size=64 << 20)
