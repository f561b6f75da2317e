"""The exchange service's own folder, laid out as nbgrader's filesystem exchange is.

``<store>/<course>/outbound/<assignment>/`` (released files), ``<store>/<course>/inbound/
<student>+<assignment>+<timestamp>+<random>/`` (submissions, with the service's ``timestamp.txt`` and
``submission_secret.txt``) and ``<store>/<course>/feedback/<hash>.html`` (hash as nbgrader's
``release_feedback`` makes it).  Only the service's account writes here (the folder is 0700 and its
own), so nothing in it is a link; uploads land in ``.incoming/`` and are renamed into place whole.
The learner home and the trainer dashboard (root) read the same layout.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from nbgrader.utils import notebook_hash

from donghaeng.common import safe_fs
from donghaeng.services.exchange.archive import Limits, extract_tar, tar_folder

#: nbgrader's default timestamp format with the UTC zone, as ``nbgrader submit`` writes it.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"
#: Files of a submission that the service writes itself; a learner's copies are dropped.
STAMPS = ("timestamp.txt", "submission_secret.txt")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

MSG_NOT_RELEASED = "'{assignment}' 과제는 아직 배포되지 않았어요."
MSG_EXISTS = "'{assignment}' 과제는 이미 배포되어 있어요. 다시 배포하려면 --force를 붙여 주세요."
MSG_MISSING = ("'{assignment}' 과제를 제출하지 않았어요: 노트북 {names}이(가) 없어요 "
               "(missing notebooks). '원래대로 되돌리기'로 다시 받은 뒤 제출해 주세요.")
MSG_NO_SUBMISSION = "그 제출물을 찾지 못했어요."


class StoreError(Exception):
    """A request the store refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def now_stamp() -> str:
    return datetime.now(timezone.utc).strftime(TIMESTAMP_FORMAT)


def checksum(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / ".incoming"

    def _course(self, course: str, *parts: str) -> Path:
        return self.root.joinpath(course, *parts)

    @contextmanager
    def _fresh(self) -> Iterator[Path]:
        """A new empty folder in ``.incoming``; removed unless the caller renamed it away."""
        self.incoming.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.incoming))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _install(self, folder: Path, dest: Path) -> None:
        """Move *folder* to *dest*, replacing what was there in one rename."""
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        if dest.exists():
            old = self.incoming / f"old-{secrets.token_hex(8)}"
            os.rename(dest, old)
            os.rename(folder, dest)
            shutil.rmtree(old)
        else:
            os.rename(folder, dest)

    # -- released assignments ------------------------------------------------------------------
    def released(self, course: str) -> list[dict]:
        outbound = self._course(course, "outbound")
        if not outbound.is_dir():
            return []
        return [{"course_id": course, "assignment_id": p.name, "notebooks": sorted(n.stem for n in p.glob("*.ipynb"))}
                for p in sorted(outbound.iterdir()) if p.is_dir()]

    def release(self, course: str, assignment: str, body: BinaryIO, limits: Limits, force: bool) -> list[str]:
        dest = self._course(course, "outbound", assignment)
        if dest.exists() and not force:
            raise StoreError(MSG_EXISTS.format(assignment=assignment), 409)
        with self._fresh() as folder:
            files = extract_tar(body, folder, limits)
            self._install(folder, dest)
        return files

    def unrelease(self, course: str, assignment: str) -> None:
        dest = self._outbound(course, assignment)
        with self._fresh() as folder:
            os.rename(dest, folder / "old")

    def _outbound(self, course: str, assignment: str) -> Path:
        dest = self._course(course, "outbound", assignment)
        if not dest.is_dir():
            raise StoreError(MSG_NOT_RELEASED.format(assignment=assignment), 404)
        return dest

    def release_archive(self, course: str, assignment: str, out: BinaryIO) -> None:
        tar_folder(self._outbound(course, assignment), out)

    # -- submissions ---------------------------------------------------------------------------
    def submit(self, course: str, assignment: str, student: str, body: BinaryIO, limits: Limits,
               strict: bool) -> dict:
        """Receive a submission: the student and the time are the service's, never the upload's."""
        released = {p.name for p in self._outbound(course, assignment).glob("*.ipynb")}
        with self._fresh() as folder:
            files = extract_tar(body, folder, limits, drop=STAMPS)
            missing = sorted(released - set(files))
            if missing and strict:
                raise StoreError(MSG_MISSING.format(assignment=assignment, names=", ".join(missing)), 422)
            timestamp = now_stamp()
            random = base64.urlsafe_b64encode(os.urandom(9)).decode("ascii")
            name = f"{student}+{assignment}+{timestamp}+{random}"
            (folder / "timestamp.txt").write_text(timestamp, encoding="utf-8")
            (folder / "submission_secret.txt").write_text(secrets.token_hex(64), encoding="utf-8")
            self._install(folder, self._course(course, "inbound", name))
        return {"id": name, "timestamp": timestamp, "missing": missing}

    def submissions(self, course: str, assignment: str | None = None, student: str | None = None) -> list[dict]:
        """Every submission of the course (of *assignment*, by *student*), oldest first, with the
        feedback released for each notebook (notebook id -> md5 of the HTML)."""
        inbound = self._course(course, "inbound")
        if not inbound.is_dir():
            return []
        found = []
        for path in inbound.iterdir():
            parts = path.name.rsplit("+", 3)
            if len(parts) != 4 or not path.is_dir():
                continue
            who, what, timestamp, _ = parts
            if (assignment and what != assignment) or (student and who != student):
                continue
            notebooks = sorted(p.stem for p in path.glob("*.ipynb"))
            found.append({"course_id": course, "student_id": who, "assignment_id": what, "timestamp": timestamp,
                          "id": path.name, "notebooks": notebooks, "feedback": self._feedback_of(course, path, notebooks)})
        return sorted(found, key=lambda s: s["timestamp"])

    def _submission(self, course: str, submission_id: str) -> Path:
        path = self._course(course, "inbound", submission_id)
        if "/" in submission_id or submission_id.startswith(".") or not path.is_dir():
            raise StoreError(MSG_NO_SUBMISSION, 404)
        return path

    def submission_archive(self, course: str, submission_id: str, out: BinaryIO) -> None:
        tar_folder(self._submission(course, submission_id), out)

    # -- feedback ------------------------------------------------------------------------------
    def _feedback_path(self, course: str, submission: Path, notebook: str) -> Path:
        secret = (submission / "submission_secret.txt").read_text(encoding="utf-8")
        return self._course(course, "feedback", f"{notebook_hash(secret=secret, notebook_id=notebook)}.html")

    def _feedback_of(self, course: str, submission: Path, notebooks: list[str]) -> dict[str, str]:
        found = {}
        for notebook in notebooks:
            path = self._feedback_path(course, submission, notebook)
            if path.is_file():
                found[notebook] = checksum(path)
        return found

    def release_feedback(self, course: str, student: str, assignment: str, timestamp: str, notebook: str,
                         html: bytes) -> None:
        """Store the feedback of one notebook of the submission *student* made at *timestamp*."""
        matches = [s for s in self.submissions(course, assignment, student) if s["timestamp"] == timestamp]
        if not matches or notebook not in matches[0]["notebooks"]:
            raise StoreError(MSG_NO_SUBMISSION, 404)
        dest = self._feedback_path(course, self._submission(course, matches[0]["id"]), notebook)
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        safe_fs.write_bytes(dest.parent, dest.name, html, mode=0o600)

    def feedback_archive(self, course: str, student: str, assignment: str | None, out: BinaryIO) -> int:
        """The released feedback of *student*'s own submissions as ``<assignment>/<timestamp>/<nb>.html``;
        how many files."""
        with self._fresh() as folder:
            count = 0
            for sub in self.submissions(course, assignment, student):
                for notebook in sub["feedback"]:
                    source = self._feedback_path(course, self._submission(course, sub["id"]), notebook)
                    dest = folder / sub["assignment_id"] / sub["timestamp"] / f"{notebook}.html"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, dest)
                    count += 1
            tar_folder(folder, out)
        return count
