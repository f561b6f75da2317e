"""The certification database (``state/certification.sqlite``, root only).

Tables: issued ``certificates`` (with their index in the revocation list), an append-only ``audit``
log (who did what, when, why; SQLite triggers refuse UPDATE and DELETE), ``calibration`` results of
rubric-calibration exercises (written by the trainer dashboard) and ``attendance``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..settings import Settings
from .policy import CertificationError

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
CREATE TABLE IF NOT EXISTS calibration (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL,
    kappa REAL NOT NULL,
    items INTEGER NOT NULL,
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


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

    # -- calibration and attendance (written by the trainer dashboard) ------------------------
    def record_calibration(self, login: str, kappa: float, items: int, recorded_by: str) -> None:
        with self.connect() as db:
            db.execute("INSERT INTO calibration (login, kappa, items, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?)",
                       (login, kappa, items, now(), recorded_by))

    def calibration_kappa(self, login: str) -> float | None:
        """The learner's latest calibration result, None when they have none."""
        with self.connect() as db:
            row = db.execute("SELECT kappa FROM calibration WHERE login = ? ORDER BY id DESC LIMIT 1",
                             (login,)).fetchone()
        return row[0] if row else None

    def record_attendance(self, login: str, course: str, session: str) -> None:
        with self.connect() as db:
            db.execute("INSERT OR IGNORE INTO attendance (login, course, session) VALUES (?, ?, ?)",
                       (login, course, session))

    def attendance(self, login: str, course: str) -> int:
        with self.connect() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM attendance WHERE login = ? AND course = ?",
                                  (login, course)).fetchone()
        return count


def calibration_kappa(settings: Settings, login: str) -> float | None:
    """The dashboard's calibration result for *login* (Cohen's kappa against master grades)."""
    return Store.of(settings).calibration_kappa(login)
