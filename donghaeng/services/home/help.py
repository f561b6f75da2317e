"""Help requests ("도움 요청"): a learner flags a notebook cell, the course's trainers see it and mark it done.

One small sqlite file in the lab's root-only state folder; only the home service (running as root)
opens it.  Learners' servers reach it through the home service's API with their own server token.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

MAX_MESSAGE = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS help_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    learner TEXT NOT NULL,
    course TEXT NOT NULL,
    notebook TEXT NOT NULL,
    cell INTEGER,
    message TEXT NOT NULL DEFAULT '',
    asked_at TEXT NOT NULL,
    done_at TEXT,
    done_by TEXT
);
CREATE INDEX IF NOT EXISTS help_open ON help_requests (course, done_at);
"""


@dataclass(frozen=True)
class HelpRequest:
    id: int
    learner: str
    course: str
    notebook: str
    cell: int | None  # 1-based cell number the learner was on; None when unknown
    message: str
    asked_at: datetime
    done_at: datetime | None
    done_by: str | None


class HelpDesk:
    """The help requests of one lab."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(self._connect()) as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def ask(self, learner: str, course: str, notebook: str, cell: int | None, message: str = "") -> HelpRequest:
        """Record a request; an open request for the same notebook is updated instead of duplicated."""
        message = message.strip()[:MAX_MESSAGE]
        now = datetime.now(timezone.utc).isoformat()
        with closing(self._connect()) as db, db:
            row = db.execute("SELECT id FROM help_requests WHERE learner=? AND course=? AND notebook=? "
                             "AND done_at IS NULL", (learner, course, notebook)).fetchone()
            if row:
                db.execute("UPDATE help_requests SET cell=?, message=?, asked_at=? WHERE id=?",
                           (cell, message, now, row["id"]))
                request_id = row["id"]
            else:
                request_id = db.execute(
                    "INSERT INTO help_requests (learner, course, notebook, cell, message, asked_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (learner, course, notebook, cell, message, now)).lastrowid
        return self.get(request_id)

    def get(self, request_id: int) -> HelpRequest:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM help_requests WHERE id=?", (request_id,)).fetchone()
        if row is None:
            raise KeyError(request_id)
        return _request(row)

    def open_requests(self, courses: Collection[str]) -> list[HelpRequest]:
        """Open requests of the given courses, oldest first (the order a trainer walks the room)."""
        if not courses:
            return []
        marks = ",".join("?" * len(courses))
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT * FROM help_requests WHERE done_at IS NULL AND course IN ({marks}) "
                              "ORDER BY asked_at", tuple(courses)).fetchall()
        return [_request(r) for r in rows]

    def open_for_learner(self, learner: str) -> list[HelpRequest]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM help_requests WHERE done_at IS NULL AND learner=? ORDER BY asked_at",
                              (learner,)).fetchall()
        return [_request(r) for r in rows]

    def mark_done(self, request_id: int, trainer: str, courses: Collection[str]) -> bool:
        """Close a request of one of *courses*; False when there is no such open request."""
        now = datetime.now(timezone.utc).isoformat()
        with closing(self._connect()) as db, db:
            row = db.execute("SELECT course FROM help_requests WHERE id=? AND done_at IS NULL",
                             (request_id,)).fetchone()
            if row is None or row["course"] not in courses:
                return False
            db.execute("UPDATE help_requests SET done_at=?, done_by=? WHERE id=?", (now, trainer, request_id))
        return True


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _request(row: sqlite3.Row) -> HelpRequest:
    return HelpRequest(id=row["id"], learner=row["learner"], course=row["course"], notebook=row["notebook"],
                       cell=row["cell"], message=row["message"], asked_at=_time(row["asked_at"]),
                       done_at=_time(row["done_at"]), done_by=row["done_by"])
