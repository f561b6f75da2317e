"""Jupyter server extension in learners' servers: open a module, submit it, restore the original, ask for help.

Everything runs inside the learner's own server, with the server's hub token: the exchange service
(``donghaeng.services.exchange``) knows the learner by it and keeps the released files and submissions.  Fetching,
listing and submitting go through nbgrader's configured exchange classes (``ExchangeFactory``), the same
ones ``nbgrader fetch_assignment``/``submit`` use.

Routes (under the server's base URL):

* ``GET  donghaeng/open?course=…&assignment=…``: fetch when needed, then open the notebook (the learner
  home's 시작하기/이어하기 button leads here through ``/hub/spawn``);
* ``GET  donghaeng/api/notebook?path=…``: the module a notebook belongs to, its deadline, the last
  submission, problems that block a submission and self-checks that still fail;
* ``POST donghaeng/api/submit`` ``{path, request_id}``: submit the saved files (one submission per
  request id, so a double click or a retry after a network drop submits once);
* ``POST donghaeng/api/restore`` ``{path}``: move the notebook to ``이전 작업/`` and fetch the original again;
* ``POST donghaeng/api/help`` ``{path, cell, message}``: record a help request with the home service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
import nbformat
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from donghaeng.services.home.schedule import korean_time

HOME_URL_ENV = "DONGHAENG_HOME_URL"  # the home service on loopback, for server-to-service calls
BACKUP_DIR = "이전 작업"
NOTEBOOK_VIEW = "lab/tree/{path}"
PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

MSG_NOT_MODULE = "이 노트북은 과제 폴더(과정/과제/노트북) 안에 있지 않아서 제출할 수 없어요."
MSG_NOT_RELEASED = "'{assignment}' 과제는 아직 배포되지 않았어요. 강사님께 여쭤봐 주세요."
MSG_BROKEN = ("'{name}' 파일이 망가져서 열 수 없어요. '원래대로 되돌리기'를 누르면 처음 받은 노트북을 다시 받아요. "
              "지금 파일은 '이전 작업' 폴더에 그대로 보관돼요.")
MSG_MISSING_CELLS = ("'{name}'에서 문제 칸 {count}개가 지워졌어요. 이대로는 채점할 수 없어요. "
                     "'원래대로 되돌리기'로 처음 노트북을 다시 받은 뒤 답을 옮겨 주세요. 지금 파일은 따로 보관돼요.")
MSG_MISSING_NOTEBOOK = "'{name}' 노트북이 없어요. '원래대로 되돌리기'를 누르면 다시 받을 수 있어요."
MSG_LATE = "마감({deadline})이 지나서 제출할 수 없어요. 작업은 그대로 저장되어 있어요. '도움 요청'으로 강사님께 알려 주세요."
MSG_NO_ACCESS = "이 과정의 학습자로 등록되어 있지 않아요. 강사님께 알려 주세요."
MSG_EXCHANGE = "과제를 주고받는 서비스에 문제가 생겼어요. 잠시 뒤 다시 해 보고, 계속되면 강사님께 알려 주세요."
MSG_HELP_DOWN = "도움 요청을 보내지 못했어요. 손을 들어 강사님을 불러 주세요."


class LearnerError(Exception):
    """A problem the learner can act on; the message is Korean."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# -- nbgrader's exchange, as this learner -------------------------------------------------------

def _nbgrader_config(root: Path, course: str, assignment: str):
    from nbgrader.apps import NbGrader

    app = NbGrader()
    app.load_cwd_config = False  # the lab's shared nbgrader_config.py is on JUPYTER_CONFIG_PATH
    app.load_config_file()
    config = app.config
    config.CourseDirectory.course_id = course
    config.CourseDirectory.assignment_id = assignment
    config.Exchange.assignment_dir = str(root)
    return config


def _exchange_app(kind: str, root: Path, course: str, assignment: str, **traits):
    """An nbgrader exchange step (``FetchAssignment``, ``Submit``, ``List``) configured as the lab's CLI is."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    config = _nbgrader_config(root, course, assignment)
    cls = getattr(ExchangeFactory(config=config), kind)
    return cls(coursedir=CourseDirectory(config=config), authenticator=Authenticator(config=config),
               config=config, **traits)


def _run_exchange(app):
    """Run one exchange step; the service's refusals reach the learner as its Korean message."""
    from nbgrader.exchange import ExchangeError

    from donghaeng.services.exchange.client import ExchangeServiceError

    try:
        return app.start()
    except ExchangeServiceError as e:
        if e.status == 403:
            raise LearnerError(MSG_NO_ACCESS, 403) from e
        raise LearnerError(str(e), e.status if 400 <= e.status < 600 else 500) from e
    except ExchangeError as e:
        raise LearnerError(MSG_EXCHANGE, 500) from e


def fetch(root: Path, course: str, assignment: str, *, replace_missing: bool = False) -> None:
    _run_exchange(_exchange_app("FetchAssignment", root, course, assignment, replace_missing_files=replace_missing))


def submit(root: Path, course: str, assignment: str) -> datetime:
    """Submit the saved assignment folder; the submission's time as nbgrader recorded it."""
    from nbgrader.utils import parse_utc

    app = _exchange_app("Submit", root, course, assignment)
    _run_exchange(app)
    return parse_utc(app.timestamp).replace(tzinfo=timezone.utc)


def restore(root: Path, course: str, assignment: str, notebook: Path) -> Path | None:
    """Fetch the released notebook again; the learner's file moves to ``이전 작업/`` (returned)."""
    backup = None
    if notebook.exists():
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = root / BACKUP_DIR / course / assignment / f"{notebook.stem} {stamp}{notebook.suffix}"
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(notebook, backup)
    try:
        fetch(root, course, assignment, replace_missing=True)
    except LearnerError:
        if backup is not None and not notebook.exists():
            shutil.move(backup, notebook)  # nothing came back: keep the learner's file where it was
        raise
    return backup


def released_notebooks(root: Path, course: str, assignment: str) -> list[str]:
    """File names of the module's released notebooks; LearnerError (404) when it is not released."""
    listed = _run_exchange(_exchange_app("List", root, course, assignment))
    if not listed:
        raise LearnerError(MSG_NOT_RELEASED.format(assignment=assignment), 404)
    return [f"{nb['notebook_id']}.ipynb" for nb in listed[0]["notebooks"]]


@contextmanager
def released_copy(root: Path, course: str, assignment: str) -> Iterator[Path]:
    """A throw-away copy of the released module (to compare the learner's notebooks with)."""
    with tempfile.TemporaryDirectory(prefix=".donghaeng-release-") as tmp:
        _run_exchange(_exchange_app("FetchAssignment", Path(tmp), course, assignment))
        yield Path(tmp) / course / assignment


def last_submission(root: Path, course: str, assignment: str) -> datetime | None:
    """This learner's newest submission, as the exchange service stamped it."""
    from nbgrader.utils import parse_utc

    listed = _run_exchange(_exchange_app("List", root, course, assignment, inbound=True))
    stamps = [parse_utc(sub["timestamp"]) for entry in listed for sub in entry["submissions"]]
    return max(stamps).replace(tzinfo=timezone.utc) if stamps else None


# -- checking a notebook before it goes ---------------------------------------------------------

def _graded_ids(nb) -> list[str]:
    ids = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") or meta.get("solution"):
            ids.append(meta.get("grade_id"))
    return ids


def read_notebook(path: Path):
    """The notebook, or None when the file is not a notebook any more (bad JSON, bad structure)."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception:  # nbformat raises several types for bad JSON or a bad schema
        return None


def blocking_problems(folder: Path, release: Path) -> list[str]:
    """Why this folder cannot be graded as it is: missing or broken notebooks, deleted question cells."""
    problems = []
    for original in sorted(release.glob("*.ipynb")):
        mine = folder / original.name
        if not mine.is_file():
            problems.append(MSG_MISSING_NOTEBOOK.format(name=original.name))
            continue
        nb = read_notebook(mine)
        if nb is None:
            problems.append(MSG_BROKEN.format(name=original.name))
            continue
        missing = set(_graded_ids(nbformat.read(original, as_version=4))) - set(_graded_ids(nb))
        if missing:
            problems.append(MSG_MISSING_CELLS.format(name=original.name, count=len(missing)))
    return problems


def broken_notebooks(folder: Path, notebooks: list[str]) -> list[Path]:
    """The learner's copies of the released *notebooks* (file names) that no longer open."""
    mine = [folder / name for name in sorted(notebooks)]
    return [path for path in mine if path.is_file() and read_notebook(path) is None]


def failing_self_checks(notebook: Path) -> list[int]:
    """1-based numbers of the check cells whose last run ended in an error (as saved)."""
    nb = read_notebook(notebook)
    if nb is None:
        return []
    failing = []
    for number, cell in enumerate(nb.cells, start=1):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
                failing.append(number)
    return failing


# -- the handlers --------------------------------------------------------------------------------

class _LearnerMixin:
    """Shared by the handlers: the server's root folder, module lookup, the home service."""

    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser().resolve()

    def module_of(self, path: str) -> tuple[str, str, Path]:
        """(course, assignment, notebook file) of a notebook path relative to the server root."""
        parts = Path(path.strip("/")).parts
        if len(parts) != 3 or not all(PART.match(p) for p in parts) or not parts[2].endswith(".ipynb"):
            raise LearnerError(MSG_NOT_MODULE)
        return parts[0], parts[1], self.root.joinpath(*parts)

    async def home_api(self, method: str, path: str, body: dict | None = None) -> dict:
        base = os.environ.get(HOME_URL_ENV)
        if not base:
            raise ConnectionError("no home service")
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            response = await client.request(
                method, url_path_join(base, "api", path), json=body,
                headers={"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"})
        response.raise_for_status()
        return response.json()

    async def deadline(self, course: str, assignment: str) -> datetime | None:
        """From the home service (it reads nbgrader's duedate); None when there is none or it is away."""
        try:
            info = await self.home_api("GET", f"module/{quote(course)}/{quote(assignment)}")
        except (OSError, httpx.HTTPError, ValueError) as e:
            self.log.warning("learner home unreachable, no deadline check: %s", e)
            return None
        return datetime.fromisoformat(info["deadline"]) if info.get("deadline") else None

    def problems(self, course: str, assignment: str, notebook: Path) -> list[str]:
        """:func:`blocking_problems` of the notebook's folder against the released module."""
        with released_copy(self.root, course, assignment) as release:
            return blocking_problems(notebook.parent, release)

    def home_url(self) -> str:
        return url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "services", "home") + "/"


class _ApiHandler(_LearnerMixin, APIHandler):
    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = str(error) if isinstance(error, LearnerError) else "문제가 생겼어요. 잠시 뒤 다시 해 주세요."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}, ensure_ascii=False))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, LearnerError):
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)


OPEN_PAGE = """<!doctype html><html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>과제를 열지 못했어요 - 동행랩</title>
<style>body{{font-family:'NanumGothic',sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;font-size:1.1rem;line-height:1.6}}
a{{color:#0b57d0}} a:focus{{outline:3px solid #0b57d0;outline-offset:2px}}</style></head>
<body><main><h1>과제를 열지 못했어요</h1><p role="alert">{message}</p>
{action}<p><a href="{home}">학습 홈으로 돌아가기</a></p></main></body></html>"""
RESTORE_FORM = """<form method="post"><input type="hidden" name="_xsrf" value="{xsrf}">
<button type="submit" style="font:inherit;font-weight:700;padding:.5rem 1rem">원래대로 되돌리고 열기</button></form>"""


class OpenHandler(_LearnerMixin, JupyterHandler):
    """Fetch the module when it is not here yet, then open its first notebook."""

    @web.authenticated
    async def get(self) -> None:
        course, assignment = self.get_argument("course", ""), self.get_argument("assignment", "")
        try:
            if not (PART.match(course) and PART.match(assignment)):
                raise LearnerError(MSG_NOT_MODULE)
            folder = self.root / course / assignment
            notebooks = await asyncio.to_thread(released_notebooks, self.root, course, assignment)
            missing = [name for name in notebooks if not (folder / name).exists()]
            if not folder.is_dir() or missing:
                await asyncio.to_thread(fetch, self.root, course, assignment, replace_missing=folder.is_dir())
            broken = [MSG_BROKEN.format(name=p.name) for p in broken_notebooks(folder, notebooks)]
            if broken:
                raise LearnerError(" ".join(broken), 409)
        except LearnerError as e:
            self.set_status(e.status)
            action = RESTORE_FORM.format(xsrf=self.xsrf_token.decode()) if e.status == 409 else ""
            self.finish(OPEN_PAGE.format(message=e, home=self.home_url(), action=action))
            return
        self.open_notebook(course, assignment, notebooks)

    @web.authenticated
    async def post(self) -> None:
        """Restore the broken notebooks of the module (each learner's file is kept), then open it."""
        course, assignment = self.get_argument("course", ""), self.get_argument("assignment", "")
        if not (PART.match(course) and PART.match(assignment)):
            raise web.HTTPError(400)
        folder = self.root / course / assignment
        try:
            notebooks = await asyncio.to_thread(released_notebooks, self.root, course, assignment)
        except LearnerError as e:
            raise web.HTTPError(e.status) from e
        for notebook in broken_notebooks(folder, notebooks):
            await asyncio.to_thread(restore, self.root, course, assignment, notebook)
        self.open_notebook(course, assignment, notebooks)

    def open_notebook(self, course: str, assignment: str, notebooks: list[str]) -> None:
        notebooks = sorted(notebooks)
        target = f"{course}/{assignment}/{notebooks[0]}" if notebooks else f"{course}/{assignment}"
        self.redirect(url_path_join(self.base_url, NOTEBOOK_VIEW.format(path=quote(target))))


class NotebookInfoHandler(_ApiHandler):
    @web.authenticated
    async def get(self) -> None:
        course, assignment, notebook = self.module_of(self.get_argument("path"))
        problems = await asyncio.to_thread(self.problems, course, assignment, notebook)
        deadline = await self.deadline(course, assignment)
        last = await asyncio.to_thread(last_submission, self.root, course, assignment)
        self.finish({
            "course": course, "assignment": assignment,
            "deadline": deadline.isoformat() if deadline else None,
            "deadline_text": korean_time(deadline) if deadline else None,
            "late": bool(deadline and datetime.now(timezone.utc) > deadline),
            "last_submission": korean_time(last) if last else None,
            "problems": problems,
            "failing_checks": failing_self_checks(notebook),
            "home": self.home_url(),
        })


class SubmitHandler(_ApiHandler):
    """Submit once per request id; resubmitting before the deadline makes a new, newer submission."""

    receipts: dict[str, dict] = {}
    locks: dict[tuple[str, str], asyncio.Lock] = {}

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        course, assignment, notebook = self.module_of(str(body.get("path", "")))
        request_id = str(body.get("request_id", ""))[:64]
        lock = self.locks.setdefault((course, assignment), asyncio.Lock())
        async with lock:
            if request_id and request_id in self.receipts:
                self.finish(self.receipts[request_id])
                return
            problems = await asyncio.to_thread(self.problems, course, assignment, notebook)
            if problems:
                raise LearnerError(" ".join(problems), 422)
            deadline = await self.deadline(course, assignment)
            if deadline and datetime.now(timezone.utc) > deadline:
                raise LearnerError(MSG_LATE.format(deadline=korean_time(deadline)), 409)
            submitted = await asyncio.to_thread(submit, self.root, course, assignment)
            receipt = {"submitted_at": submitted.isoformat(), "receipt": korean_time(submitted),
                       "deadline_text": korean_time(deadline) if deadline else None}
            if request_id:
                self.receipts[request_id] = receipt
        self.log.info("%s/%s submitted at %s", course, assignment, submitted.isoformat())
        self.finish(receipt)


class RestoreHandler(_ApiHandler):
    """Put the released notebook back; the learner's version moves to ``이전 작업/<course>/<assignment>/``."""

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        path = str(body.get("path", ""))
        course, assignment, notebook = self.module_of(path)
        backup = await asyncio.to_thread(restore, self.root, course, assignment, notebook)
        self.finish({"path": path, "backup": str(backup.relative_to(self.root)) if backup else None})


class HelpHandler(_ApiHandler):
    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        path = str(body.get("path", ""))
        course, _, _ = self.module_of(path)
        cell = body.get("cell")
        try:
            saved = await self.home_api("POST", "help", {
                "course": course, "notebook": path, "cell": int(cell) if cell is not None else None,
                "message": str(body.get("message", ""))})
        except (OSError, httpx.HTTPError, ValueError) as e:
            self.log.warning("help request not recorded: %s", e)
            raise LearnerError(MSG_HELP_DOWN, 503) from e
        self.finish(saved)


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "donghaeng.server.extension"}]


def _serve_learner_css(serverapp) -> None:
    """Let JupyterLab's ``custom/custom.css`` come from the lab's learner config dir (18 px text,
    :data:`donghaeng.deploy.jupyter_config.LEARNER_CSS`).

    ``ServerApp.static_custom_path`` is not configurable; JupyterLab's custom CSS handler reads this
    same list on every request, so the first config dir on ``JUPYTER_CONFIG_PATH`` that holds a
    ``custom/custom.css`` is put at its front (a learner's own ``~/.jupyter/custom`` still comes first).
    """
    from jupyter_core.paths import jupyter_config_path

    paths = serverapp.web_app.settings.get("static_custom_path")
    if not isinstance(paths, list):
        return
    for folder in jupyter_config_path():
        custom = os.path.join(folder, "custom")
        if os.path.isfile(os.path.join(custom, "custom.css")):
            if custom not in paths:
                paths.insert(0, custom)
            return


def _load_jupyter_server_extension(serverapp) -> None:
    _serve_learner_css(serverapp)
    base = url_path_join(serverapp.web_app.settings["base_url"], "donghaeng")
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "open"), OpenHandler),
        (url_path_join(base, "api", "notebook"), NotebookInfoHandler),
        (url_path_join(base, "api", "submit"), SubmitHandler),
        (url_path_join(base, "api", "restore"), RestoreHandler),
        (url_path_join(base, "api", "help"), HelpHandler),
    ])
