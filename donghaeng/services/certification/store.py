"""The certification database (``state/certification.sqlite``, root only).

Tables: issued ``certificates`` (with their index in the revocation list), an append-only ``audit``
log (who did what, when, why; SQLite triggers refuse UPDATE and DELETE), ``calibration_attempts`` of
the rubric calibration (one row per attempt, numbered per candidate and rubric set so the limit holds),
``teachback`` observations a trainer records while watching a candidate teach, and ``attendance``.
All of them are written by the trainer dashboard, which runs as root.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from donghaeng.common import safe_fs
from donghaeng.common.settings import Settings
from donghaeng.services.certification.policy import CertificationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    status_index INTEGER NOT NULL UNIQUE,
    revoked_at TEXT,
    revoked_by TEXT,
    revoke_reason TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    login TEXT,
    level TEXT,
    serial TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS calibration_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL,
    rubric TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    kappa REAL NOT NULL,
    samples TEXT NOT NULL,
    drift TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (login, rubric, attempt)
);
CREATE TABLE IF NOT EXISTS teachback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL,
    course TEXT NOT NULL,
    session_date TEXT NOT NULL,
    attended INTEGER NOT NULL,
    checked TEXT NOT NULL,
    score INTEGER NOT NULL,
    max_score INTEGER NOT NULL,
    note TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attendance (
    login TEXT NOT NULL,
    course TEXT NOT NULL,
    session TEXT NOT NULL,
    PRIMARY KEY (login, course, session)
);
"""


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomically write a file readers never see half-written: root-only by default (signing key, gate
    token, certificate PDFs); public documents pass ``mode=0o644``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    safe_fs.write_bytes(path.parent, path.name, data, mode=mode)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Certificate:
    serial: str
    login: str
    name: str
    level: str  # level id
    issued_at: str  # ISO 8601, UTC
    issued_by: str
    status_index: int
    revoked_at: str | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    pdf_path: Path | None = None
    credential_path: Path | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class AuditEntry:
    at: str
    actor: str
    action: str
    login: str | None
    level: str | None
    serial: str | None
    detail: str


@dataclass(frozen=True)
class CalibrationAttempt:
    rubric: str
    attempt: int  # 1, 2, ... per login and rubric set
    kappa: float
    samples: tuple[str, ...]  # sample ids drawn for this attempt (for the next draw's rotation)
    drift: tuple[str, ...]  # Korean sentences: criteria the candidate grades differently
    recorded_at: str


@dataclass(frozen=True)
class TeachBackRecord:
    """What a trainer saw at a candidate's live teach-back."""

    login: str
    course: str
    session_date: str  # YYYY-MM-DD
    attended: bool
    checked: tuple[str, ...]  # checklist item ids the trainer ticked
    score: int
    max_score: int
    note: str
    recorded_at: str
    recorded_by: str


def db_path(settings: Settings) -> Path:
    return settings.paths.state / "certification.sqlite"


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(path.parent, os.W_OK | os.X_OK):  # e.g. a learner's account
            raise CertificationError("수료 정보는 관리자만 다룰 수 있어요: 관리자 계정(sudo)으로 실행해 주세요.")
        with self.connect() as db:
            db.executescript(SCHEMA)
        os.chmod(path, 0o600)

    @classmethod
    def of(cls, settings: Settings) -> "Store":
        return cls(db_path(settings))

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction
                yield db
        finally:
            db.close()

    # -- certificates -------------------------------------------------------------------------
    _COLUMNS = ("serial, login, name, level, issued_at, issued_by, status_index, revoked_at, revoked_by, "
                "revoke_reason")

    def certificates(self, login: str | None = None) -> list[Certificate]:
        where, args = ("WHERE login = ?", (login,)) if login else ("", ())
        with self.connect() as db:
            rows = db.execute(f"SELECT {self._COLUMNS} FROM certificates {where} ORDER BY issued_at, serial",
                              args).fetchall()
        return [Certificate(*row) for row in rows]

    def certificate(self, serial: str) -> Certificate | None:
        with self.connect() as db:
            row = db.execute(f"SELECT {self._COLUMNS} FROM certificates WHERE serial = ?", (serial,)).fetchone()
        return Certificate(*row) if row else None

    def add_certificate(self, db: sqlite3.Connection, serial: str, login: str, name: str, level: str,
                        issued_at: str, issued_by: str) -> int:
        """Insert a certificate inside the caller's transaction; returns its revocation-list index."""
        (index,) = db.execute("SELECT COALESCE(MAX(status_index) + 1, 0) FROM certificates").fetchone()
        db.execute("INSERT INTO certificates (serial, login, name, level, issued_at, issued_by, status_index) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (serial, login, name, level, issued_at, issued_by, index))
        return index

    def revoked_indices(self) -> set[int]:
        with self.connect() as db:
            return {i for (i,) in db.execute("SELECT status_index FROM certificates WHERE revoked_at IS NOT NULL")}

    # -- audit --------------------------------------------------------------------------------
    @staticmethod
    def log(db: sqlite3.Connection, actor: str, action: str, *, login: str | None = None,
            level: str | None = None, serial: str | None = None, detail: str = "") -> None:
        db.execute("INSERT INTO audit (at, actor, action, login, level, serial, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (now(), actor, action, login, level, serial, detail))

    def audit(self, login: str | None = None) -> list[AuditEntry]:
        where, args = ("WHERE login = ?", (login,)) if login else ("", ())
        with self.connect() as db:
            rows = db.execute(f"SELECT at, actor, action, login, level, serial, detail FROM audit {where} "
                              "ORDER BY id", args).fetchall()
        return [AuditEntry(*row) for row in rows]

    # -- calibration, teach-back and attendance (written by the trainer dashboard) ---------------
    def record_calibration(self, login: str, rubric: str, attempt: int, kappa: float, samples: list[str],
                           drift: list[str], recorded_by: str) -> None:
        """Store one attempt; the same attempt number twice (two tabs, a replayed form) is refused."""
        try:
            with self.connect() as db:
                db.execute("INSERT INTO calibration_attempts (login, rubric, attempt, kappa, samples, drift, "
                           "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (login, rubric, attempt, kappa, json.dumps(samples), json.dumps(drift, ensure_ascii=False),
                            now()))
                Store.log(db, recorded_by, "calibration", login=login,
                          detail=f"rubric={rubric}; attempt={attempt}; kappa={kappa:.3f}")
        except sqlite3.IntegrityError as e:
            raise CertificationError("이 채점 맞추기는 이미 냈어요. 페이지를 새로 고쳐 주세요.") from e

    def calibration_attempts(self, login: str, rubric: str | None = None) -> list[CalibrationAttempt]:
        where, args = ("AND rubric = ?", (login, rubric)) if rubric else ("", (login,))
        with self.connect() as db:
            rows = db.execute("SELECT rubric, attempt, kappa, samples, drift, recorded_at FROM calibration_attempts "
                              f"WHERE login = ? {where} ORDER BY rubric, attempt", args).fetchall()
        return [CalibrationAttempt(r, a, k, tuple(json.loads(s)), tuple(json.loads(d)), at)
                for r, a, k, s, d, at in rows]

    def record_teachback(self, record: TeachBackRecord) -> None:
        with self.connect() as db:
            db.execute("INSERT INTO teachback (login, course, session_date, attended, checked, score, max_score, "
                       "note, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (record.login, record.course, record.session_date, int(record.attended),
                        json.dumps(list(record.checked)), record.score, record.max_score, record.note,
                        record.recorded_at, record.recorded_by))
            Store.log(db, record.recorded_by, "teachback", login=record.login,
                      detail=f"course={record.course}; date={record.session_date}; attended={record.attended}; "
                             f"checklist={record.score}/{record.max_score}")

    def teachback(self, login: str, course: str) -> TeachBackRecord | None:
        """The latest observation of *login* in *course* (a later session replaces an earlier one)."""
        with self.connect() as db:
            row = db.execute("SELECT login, course, session_date, attended, checked, score, max_score, note, "
                             "recorded_at, recorded_by FROM teachback WHERE login = ? AND course = ? "
                             "ORDER BY id DESC LIMIT 1", (login, course)).fetchone()
        if row is None:
            return None
        login_, course_, date, attended, checked, score, max_score, note, at, by = row
        return TeachBackRecord(login_, course_, date, bool(attended), tuple(json.loads(checked)), score, max_score,
                               note, at, by)

    def record_attendance(self, login: str, course: str, session: str) -> None:
        with self.connect() as db:
            db.execute("INSERT OR IGNORE INTO attendance (login, course, session) VALUES (?, ?, ?)",
                       (login, course, session))

    def attendance(self, login: str, course: str) -> int:
        with self.connect() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM attendance WHERE login = ? AND course = ?",
                                  (login, course)).fetchone()
        return count

