"""nbgrader's exchange steps, talking to the lab's exchange service instead of a shared folder.

Selected with ``c.ExchangeFactory.*`` (``donghaeng/deploy/jupyter_config.py``), so ``nbgrader submit``,
``fetch_assignment``, ``collect``, ``release_assignment``, ``release_feedback``, ``fetch_feedback``,
``list``, the formgrader and the learner's buttons all use them unchanged.  The caller is whoever owns
the hub token: ``JUPYTERHUB_API_TOKEN`` in a learner's server or the formgrader, or the file named by
``c.ServiceExchange.token_file`` (the course graders' CLI runs).  Each step sends only regular files of
the assignment, never through a link; the service checks again and stamps submissions itself.
"""

from __future__ import annotations

import glob
import io
import os
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import httpx
from nbgrader.exchange import abc
from nbgrader.exchange.abc import ExchangeError
from nbgrader.utils import parse_utc
from traitlets import Unicode, default

from donghaeng.services.exchange.archive import ArchiveRefused, Limits, check_limits, extract_tar, gather, write_tar

URL_ENV = "DONGHAENG_EXCHANGE_URL"
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
# What the service sends was checked when it arrived; these bounds only keep a broken reply finite.
FROM_SERVICE = Limits(max_files=100_000, max_file_bytes=1 << 32, max_total_bytes=1 << 34)

MSG_UNREACHABLE = "과제 교환 서비스에 연결하지 못했어요. 잠시 뒤 다시 해 보고, 계속되면 강사님께 알려 주세요."
MSG_NO_COURSE = "과정 이름이 없어요(--course)."
MSG_NOT_HERE = "'{path}' 폴더가 없어요. 과제를 먼저 받아 주세요."
MSG_ALREADY = "이미 받은 과제가 있어요: {path} (You already have a copy of the assignment in this directory)"
MSG_NOT_GENERATED = "'{path}'에 배포할 과제가 없어요. 먼저 nbgrader generate_assignment를 실행해 주세요."


class ExchangeServiceError(ExchangeError):
    """The exchange said no; the message is Korean and ``status`` the service's HTTP status."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class ServiceExchange(abc.Exchange):
    """Shared by every step: where the service is, the caller's token, requests and archives."""

    url = Unicode(help="The exchange service's base URL (…/services/exchange/).").tag(config=True)
    token_file = Unicode("", help="File holding the hub token to use instead of $JUPYTERHUB_API_TOKEN.").tag(config=True)

    @default("url")
    def _url_default(self) -> str:
        return os.environ.get(URL_ENV, "")

    def fail(self, msg: str, status: int = 500) -> None:
        self.log.error(msg)
        raise ExchangeServiceError(msg, status)

    def token(self) -> str:
        if self.token_file:
            return Path(self.token_file).read_text(encoding="utf-8").strip()
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One call to the service; a refusal becomes :class:`ExchangeServiceError` with its Korean message."""
        if not self.url:
            self.fail(MSG_UNREACHABLE)
        try:
            response = httpx.request(method, self.url.rstrip("/") + "/api/" + path, timeout=TIMEOUT,
                                     headers={"Authorization": f"token {self.token()}"}, **kwargs)
        except httpx.HTTPError as e:
            self.log.error("exchange service unreachable at %s: %s", self.url, e)
            self.fail(MSG_UNREACHABLE)
        if response.status_code >= 400:
            try:
                message = response.json()["message"]
            except (ValueError, KeyError):
                message = MSG_UNREACHABLE
            self.fail(message, response.status_code)
        return response

    def course_id(self) -> str:
        if not self.coursedir.course_id:
            self.fail(MSG_NO_COURSE, 400)
        return self.coursedir.course_id

    def local_dir(self, course: str, assignment: str) -> Path:
        """Where a learner keeps the assignment: ``<assignment_dir>/<course>/<assignment>``."""
        return Path(self.assignment_dir, course, assignment).absolute()

    def send(self, method: str, path: str, folder: Path, limits_of: str, **params: str) -> httpx.Response:
        """Pack *folder*'s regular files (nbgrader's ignore patterns apply) and send them."""
        try:
            files = gather(folder, shutil.ignore_patterns(*self.coursedir.ignore))
            limits = Limits(**self.api("GET", "limits").json()[limits_of])
            check_limits(files, limits)
            with tempfile.SpooledTemporaryFile(max_size=8 << 20) as body:
                write_tar(folder, files, body)
                body.seek(0)
                return self.api(method, path, params=params, content=body.read())
        except ArchiveRefused as e:
            self.fail(str(e), 422)

    def receive(self, path: str, dest: Path, params: dict[str, str] | None = None) -> list[str]:
        """Download an archive and unpack it into the new folder *dest* (its parent must exist)."""
        response = self.api("GET", path, params=params or {})
        dest.mkdir()
        try:
            return extract_tar(io.BytesIO(response.content), dest, FROM_SERVICE)
        except ArchiveRefused as e:
            self.fail(str(e))

    def init_src(self) -> None:
        """Nothing to prepare on this side: each step checks what it sends itself."""

    def init_dest(self) -> None:
        """The service decides where files go."""


def _merge_missing(src: Path, dest: Path) -> None:
    """Move what *dest* lacks from *src* (fetching again with ``replace_missing_files``)."""
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif not target.exists():
            shutil.move(path, target)


class ExchangeFetchAssignment(ServiceExchange, abc.ExchangeFetchAssignment):
    def copy_files(self) -> None:
        course, assignment = self.course_id(), self.coursedir.assignment_id
        dest = self.local_dir(course, assignment)
        if dest.is_dir() and not self.replace_missing_files:
            self.fail(MSG_ALREADY.format(path=f"{course}/{assignment}"), 409)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
            incoming = Path(tmp) / assignment
            self.receive(f"courses/{quote(course)}/assignments/{quote(assignment)}", incoming)
            if dest.is_dir():
                _merge_missing(incoming, dest)
            else:
                incoming.rename(dest)
        self.log.info("Fetched as: %s %s", course, assignment)


class ExchangeSubmit(ServiceExchange, abc.ExchangeSubmit):
    def copy_files(self) -> None:
        course, assignment = self.course_id(), self.coursedir.assignment_id
        src = self.local_dir(course, assignment)
        if not src.is_dir():
            self.fail(MSG_NOT_HERE.format(path=f"{course}/{assignment}"), 404)
        receipt = self.send("POST", f"courses/{quote(course)}/submissions/{quote(assignment)}", src, "submission",
                            strict="1" if self.strict else "").json()
        self.timestamp = receipt["timestamp"]  # the service's clock, not ours
        if receipt["missing"]:
            self.log.warning("Possible missing notebooks for assignment %s: %s", assignment, receipt["missing"])
        self.log.info("Submitted as: %s %s %s", course, assignment, self.timestamp)


class ExchangeReleaseAssignment(ServiceExchange, abc.ExchangeReleaseAssignment):
    def copy_files(self) -> None:
        course, assignment = self.course_id(), self.coursedir.assignment_id
        src = Path(self.coursedir.format_path(self.coursedir.release_directory, ".", assignment))
        if not src.is_dir():
            self.fail(MSG_NOT_GENERATED.format(path=src), 404)
        self.send("PUT", f"courses/{quote(course)}/assignments/{quote(assignment)}", src, "release",
                  force="1" if self.force else "")
        self.log.info("Released as: %s %s", course, assignment)


class ExchangeCollect(ServiceExchange, abc.ExchangeCollect):
    """The latest submission of each learner (or the latest before the due date) into ``submitted/``."""

    def _duedate(self):
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                return gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                return None

    def _chosen(self, submissions: list[dict]) -> dict:
        ordered = sorted(submissions, key=lambda s: parse_utc(s["timestamp"]), reverse=True)
        duedate = self._duedate() if self.before_duedate else None
        if duedate is not None:
            on_time = [s for s in ordered if parse_utc(s["timestamp"]) <= duedate]
            if on_time:
                return on_time[0]
        return ordered[0]

    def copy_files(self) -> None:
        course, assignment = self.course_id(), self.coursedir.assignment_id
        student = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else ""
        listed = self.api("GET", "submissions", params={"course": course, "assignment": assignment,
                                                        "student": student}).json()
        by_student: dict[str, list[dict]] = defaultdict(list)
        for submission in listed:
            by_student[submission["student_id"]].append(submission)
        if not by_student:
            self.log.warning("No submissions of '%s' for course '%s' to collect", assignment, course)
        for student_id, submissions in sorted(by_student.items()):
            self._collect_one(course, assignment, student_id, self._chosen(submissions))

    def _collect_one(self, course: str, assignment: str, student: str, submission: dict) -> None:
        dest = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment))
        if dest.is_dir():
            existing = self.coursedir.get_existing_timestamp(str(dest))
            new = parse_utc(submission["timestamp"])
            newer = self.update and (existing is None or new > existing)
            if not (newer or (self.before_duedate and existing != new)):
                self.log.info("No newer submission to collect: %s %s", student, assignment)
                return
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".collect-") as tmp:
            incoming = Path(tmp) / assignment
            self.receive(f"courses/{quote(course)}/submission", incoming, {"id": submission["id"]})
            if dest.is_dir():
                self.log.info("Updating submission: %s %s", student, assignment)
                shutil.rmtree(dest)
            else:
                self.log.info("Collecting submission: %s %s", student, assignment)
            incoming.rename(dest)


class ExchangeReleaseFeedback(ServiceExchange, abc.ExchangeReleaseFeedback):
    def copy_files(self) -> None:
        course, assignment = self.course_id(), self.coursedir.assignment_id
        student = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else "*"
        excluded = set(filter(None, self.coursedir.student_id_exclude.split(",")))
        pattern = re.compile(re.escape(os.sep).join([
            self.coursedir.format_path(self.coursedir.feedback_directory, "(?P<student_id>[^/]+)", assignment,
                                       escape=True),
            r"(?P<notebook_id>[^/]+)\.html"]))
        folders = self.coursedir.format_path(self.coursedir.feedback_directory, student, assignment)
        # Only the assignment's own notebooks have feedback: an .html file a learner handed in is copied
        # into the feedback folder too, and must neither be released nor stop everyone's feedback.
        notebooks = {p.stem for p in Path(self.coursedir.format_path(
            self.coursedir.source_directory, ".", assignment)).glob("*.ipynb")}
        for html in map(Path, sorted(glob.glob(os.path.join(folders, "*.html")))):
            match = pattern.match(str(html))
            if match is None or match["student_id"] in excluded or match["notebook_id"] not in notebooks:
                continue
            timestamp = (html.parent / "timestamp.txt").read_text(encoding="utf-8").strip()
            self.log.info("Releasing feedback for student '%s' on assignment '%s/%s/%s' (%s)", match["student_id"],
                          course, assignment, match["notebook_id"], timestamp)
            self.api("PUT", f"courses/{quote(course)}/feedback", content=html.read_bytes(), params={
                "student": match["student_id"], "assignment": assignment, "timestamp": timestamp,
                "notebook": match["notebook_id"]})


class ExchangeFetchFeedback(ServiceExchange, abc.ExchangeFetchFeedback):
    """The learner's own feedback into ``<course>/<assignment>/feedback/<timestamp>/<notebook>.html``."""

    def copy_files(self) -> None:
        course = self.course_id()
        assignment = self.coursedir.assignment_id if self.coursedir.assignment_id not in ("", "*") else ""
        base = Path(self.assignment_dir, course).absolute()
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base, prefix=".feedback-") as tmp:
            incoming = Path(tmp) / "feedback"
            files = self.receive(f"courses/{quote(course)}/feedback", incoming, {"assignment": assignment})
            for name in files:  # <assignment>/<timestamp>/<notebook>.html
                what, timestamp, html = name.split("/")
                target = base / what / "feedback" / timestamp / html
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(incoming / name, target)
                self.log.info("Fetched feedback: %s", target)
        if not files:
            self.log.warning("No feedback available for %s %s", course, assignment or "*")


class ExchangeList(ServiceExchange, abc.ExchangeList):
    """Released assignments (``fetched`` when the learner has a copy) or submissions, in nbgrader's shapes."""

    def copy_files(self) -> None:
        """Listing moves no files; see :meth:`list_files`."""

    def _params(self) -> dict[str, str]:
        assignment = self.coursedir.assignment_id if self.coursedir.assignment_id not in ("", "*") else ""
        return {"course": self.coursedir.course_id, "assignment": assignment}

    def _released(self) -> list[dict]:
        found = []
        for info in self.api("GET", "released", params=self._params()).json():
            local = self.local_dir(info["course_id"], info["assignment_id"])
            fetched = local.is_dir()
            path = str(local) if fetched else f"{info['course_id']}/outbound/{info['assignment_id']}"
            found.append({
                "course_id": info["course_id"], "assignment_id": info["assignment_id"],
                "status": "fetched" if fetched else "released", "path": path,
                "notebooks": [{"notebook_id": nb, "path": os.path.join(path, f"{nb}.ipynb")} for nb in info["notebooks"]],
            })
        return found

    def _submitted(self) -> list[dict]:
        student = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else ""
        grouped: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
        for sub in self.api("GET", "submissions", params={**self._params(), "student": student}).json():
            grouped[(sub["course_id"], sub["student_id"], sub["assignment_id"])].append(self._submission(sub))
        return [{"course_id": c, "student_id": s, "assignment_id": a, "status": "submitted",
                 "submissions": sorted(subs, key=lambda x: x["timestamp"])}
                for (c, s, a), subs in sorted(grouped.items())]

    def _submission(self, sub: dict) -> dict:
        from nbgrader.exchange.default.list import _checksum

        feedback_dir = self.local_dir(sub["course_id"], sub["assignment_id"]) / "feedback" / sub["timestamp"]
        notebooks = []
        for nb in sub["notebooks"]:
            local = feedback_dir / f"{nb}.html"
            has_local, remote = local.is_file(), sub["feedback"].get(nb)
            notebooks.append({
                "notebook_id": nb, "path": f"{sub['id']}/{nb}.ipynb",
                "has_local_feedback": has_local, "has_exchange_feedback": remote is not None,
                "local_feedback_path": str(local) if has_local else None,
                "feedback_updated": bool(has_local and remote and remote != _checksum(str(local))),
            })
        has_local = bool(notebooks) and all(nb["has_local_feedback"] for nb in notebooks)
        return {
            "course_id": sub["course_id"], "student_id": sub["student_id"], "assignment_id": sub["assignment_id"],
            "timestamp": sub["timestamp"], "status": "submitted", "path": sub["id"], "notebooks": notebooks,
            "has_local_feedback": has_local,
            "has_exchange_feedback": bool(notebooks) and all(nb["has_exchange_feedback"] for nb in notebooks),
            "feedback_updated": any(nb["feedback_updated"] for nb in notebooks),
            "local_feedback_path": str(feedback_dir) if has_local else None,
        }

    def list_files(self) -> list[dict]:
        return self._submitted() if self.inbound or self.cached else self._released()

    def remove_files(self) -> list[dict]:
        """``nbgrader list --remove``: take released assignments back (trainers and the grader only)."""
        released = self._released()
        for info in released:
            self.api("DELETE", f"courses/{quote(info['course_id'])}/assignments/{quote(info['assignment_id'])}")
            info["status"] = "removed"
        return released
