"""The cohort: who may log in, their role, courses and password hash (one SQLite file).

The hub's authenticator and the ``donghaeng cohort`` commands both go through :class:`Cohort`;
nothing else reads or writes this database.
"""

from __future__ import annotations

import base64
import csv
import hmac
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import bcrypt
from jupyterhub.utils import compare_token, hash_token

from donghaeng.common.roster import Person

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    login TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    password_hash TEXT NOT NULL,
    must_change INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS enrolments (
    login TEXT NOT NULL REFERENCES accounts(login) ON DELETE CASCADE,
    course TEXT NOT NULL,
    PRIMARY KEY (login, course)
);
-- Courses opened by a certification level (donghaeng.services.certification), kept apart from the roster's
-- enrolments so that re-importing the roster neither drops nor duplicates them.
CREATE TABLE IF NOT EXISTS granted_courses (
    login TEXT NOT NULL REFERENCES accounts(login) ON DELETE CASCADE,
    course TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (login, course)
);
-- Accounts whose password an admin reset while the hub may hold sessions of theirs: the hub logs them
-- out everywhere and removes the row (donghaeng.hub.auth), also when the reset happened while it was down.
CREATE TABLE IF NOT EXISTS pending_sign_outs (
    login TEXT PRIMARY KEY REFERENCES accounts(login) ON DELETE CASCADE
);
"""
# Unambiguous characters only: initial passwords are read aloud and typed by non-technical learners.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class Account:
    person: Person
    password_hash: str
    must_change: bool

    @property
    def login(self) -> str:
        return self.person.login


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    initial_passwords: dict[str, str] = field(default_factory=dict)


class PasswordPolicyError(ValueError):
    """A new password does not meet the policy; the message is Korean for the learner."""


def new_initial_password() -> str:
    """12 random characters of 31 (about 59 bits), in three groups of four."""
    groups = ["".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(3)]
    return "-".join(groups)


# bcrypt reads at most 72 bytes (bcrypt 5 refuses more), and a Korean passphrase of 25 syllables is
# 75 bytes: chosen passwords are first condensed to 44 bytes.  HMAC with a fixed label rather than a
# plain SHA-256, so that an unsalted SHA-256 of the same password leaked elsewhere cannot be tried
# against our hashes ("password shucking").
PREHASHED = "hmac-sha256:"
_PREHASH_KEY = b"donghaeng-password-v1"
BCRYPT_MAX_BYTES = 72


def _prehash(password: str) -> bytes:
    return base64.b64encode(hmac.new(_PREHASH_KEY, password.encode(), "sha256").digest())


def hash_password(password: str) -> str:
    """A password a person chose: bcrypt, slow on purpose (~0.25 s) because people choose guessable ones."""
    return PREHASHED + bcrypt.hashpw(_prehash(password), bcrypt.gensalt()).decode()


def hash_initial_password(password: str) -> str:
    """A password the lab generated: random enough that a slow hash adds nothing (JupyterHub stores
    its own generated tokens the same way), so a class's first logins cost one bcrypt each, not two."""
    return hash_token(password)


def is_chosen_password(stored: str) -> bool:
    """True for a bcrypt hash (a chosen password); False for a generated initial password's hash."""
    return stored.startswith((PREHASHED, "$2"))


def bcrypt_matches(password: str, stored: str) -> bool:
    """Check a bcrypt hash: exactly one bcrypt computation, whatever the password's length."""
    if stored.startswith(PREHASHED):
        return bcrypt.checkpw(_prehash(password), stored.removeprefix(PREHASHED).encode())
    # a hash from before pre-hashing: its password had at most 72 bytes, so a longer one cannot match
    raw = password.encode()
    return bcrypt.checkpw(raw[:BCRYPT_MAX_BYTES], stored.encode()) and len(raw) <= BCRYPT_MAX_BYTES


class Cohort:
    """Accounts and enrolments stored in ``state/cohort.sqlite`` (readable by root only)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._connect() as db:
            db.executescript(SCHEMA)
        os.chmod(db_path, 0o600)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.execute("PRAGMA foreign_keys = ON")
        try:
            with db:  # one transaction: committed on success, rolled back on any error
                yield db
        finally:
            db.close()

    # -- reading -----------------------------------------------------------------------------
    def _load(self, db: sqlite3.Connection, where: str = "", args: tuple = (),
              granted: bool = True) -> list[Account]:
        rows = db.execute(
            f"SELECT login, name, role, email, phone, password_hash, must_change FROM accounts {where} "
            "ORDER BY login", args,
        ).fetchall()
        courses: dict[str, list[str]] = {}
        union = " UNION SELECT login, course FROM granted_courses" if granted else ""
        for login, course in db.execute(f"SELECT login, course FROM enrolments{union} ORDER BY course"):
            courses.setdefault(login, []).append(course)
        return [
            Account(
                Person(login=r[0], name=r[1], role=r[2], email=r[3], phone=r[4],
                       courses=tuple(courses.get(r[0], ()))),
                password_hash=r[5], must_change=bool(r[6]),
            )
            for r in rows
        ]

    def accounts(self) -> list[Account]:
        with self._connect() as db:
            return self._load(db)

    def get(self, login: str) -> Account | None:
        with self._connect() as db:
            found = self._load(db, "WHERE login = ?", (login,))
        return found[0] if found else None

    # -- writing -----------------------------------------------------------------------------
    def import_people(self, people: Iterable[Person]) -> ImportReport:
        """Create or update accounts in one transaction; passwords of existing accounts are kept."""
        report = ImportReport()
        with self._connect() as db:
            existing = {a.login: a.person for a in self._load(db, granted=False)}
            for person in people:
                old = existing.get(person.login)
                if old == person:
                    report.unchanged.append(person.login)
                    continue
                if old is None:
                    password = new_initial_password()
                    db.execute(
                        "INSERT INTO accounts (login, name, role, email, phone, password_hash, must_change)"
                        " VALUES (?, ?, ?, ?, ?, ?, 1)",
                        (person.login, person.name, person.role, person.email, person.phone,
                         hash_initial_password(password)),
                    )
                    report.created.append(person.login)
                    report.initial_passwords[person.login] = password
                else:
                    db.execute(
                        "UPDATE accounts SET name = ?, role = ?, email = ?, phone = ? WHERE login = ?",
                        (person.name, person.role, person.email, person.phone, person.login),
                    )
                    db.execute("DELETE FROM enrolments WHERE login = ?", (person.login,))
                    report.updated.append(person.login)
                db.executemany(
                    "INSERT INTO enrolments (login, course) VALUES (?, ?)",
                    [(person.login, course) for course in person.courses],
                )
        return report

    def grant_course(self, login: str, course: str, reason: str) -> bool:
        """Enrol *login* in *course* on top of the roster; False when it was already granted."""
        with self._connect() as db:
            cur = db.execute("INSERT OR IGNORE INTO granted_courses (login, course, reason) VALUES (?, ?, ?)",
                             (login, course, reason))
        return cur.rowcount == 1

    def withdraw_course(self, login: str, course: str) -> bool:
        """Undo :meth:`grant_course` (a roster enrolment stays); False when nothing was granted."""
        with self._connect() as db:
            cur = db.execute("DELETE FROM granted_courses WHERE login = ? AND course = ?", (login, course))
        return cur.rowcount == 1

    def verify(self, login: str, password: str) -> Account | None:
        """The account when *password* matches; None for an unknown login or a wrong password.

        Every failure costs the same: one token check and one bcrypt check, whether the login exists
        and whichever kind of password it has, so the time of an answer tells nothing about the
        roster.  Only the right initial password skips bcrypt (the cheap first login).
        """
        account = self.get(login)
        stored = account.password_hash if account else ""
        chosen = is_chosen_password(stored)
        initial = account is not None and not chosen
        if compare_token(stored if initial else _DUMMY_TOKEN, password) and initial:
            return account
        if bcrypt_matches(password, stored if chosen else _DUMMY_BCRYPT) and chosen:
            return account
        return None

    def set_password(self, login: str, new_password: str, min_length: int,
                     replacing: str | None = None) -> bool:
        """Replace the password and clear the first-login flag.

        With *replacing* (the hash the caller checked), False when the stored hash is no longer that
        one, so that a change form can be neither replayed nor raced.
        """
        if len(new_password) < min_length:
            raise PasswordPolicyError(f"비밀번호는 {min_length}자 이상으로 정해 주세요.")
        if new_password.isdigit() or new_password.isalpha():
            raise PasswordPolicyError("비밀번호에 글자와 숫자를 섞어 주세요.")
        new_hash = hash_password(new_password)
        with self._connect() as db:
            cur = db.execute(
                "UPDATE accounts SET password_hash = ?, must_change = 0"
                " WHERE login = ? AND (? IS NULL OR password_hash = ?)",
                (new_hash, login, replacing, replacing),
            )
            changed = cur.rowcount == 1
            if changed:  # the hub logs the account out itself when its owner changes the password
                db.execute("DELETE FROM pending_sign_outs WHERE login = ?", (login,))
        return changed

    def reset_password(self, login: str) -> str:
        """Give the account a fresh initial password that must be changed at next login."""
        password = new_initial_password()
        with self._connect() as db:
            cur = db.execute(
                "UPDATE accounts SET password_hash = ?, must_change = 1 WHERE login = ?",
                (hash_initial_password(password), login),
            )
            if cur.rowcount == 0:
                raise KeyError(login)
            db.execute("INSERT OR IGNORE INTO pending_sign_outs (login) VALUES (?)", (login,))
        return password

    def pending_sign_outs(self) -> list[str]:
        """Accounts reset since the hub last logged them out everywhere."""
        with self._connect() as db:
            return [login for (login,) in db.execute("SELECT login FROM pending_sign_outs ORDER BY login")]

    def signed_out(self, login: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM pending_sign_outs WHERE login = ?", (login,))


# what failure paths check instead of a hash the account does not have (see Cohort.verify)
_DUMMY_BCRYPT = hash_password(secrets.token_urlsafe())
_DUMMY_TOKEN = hash_initial_password(secrets.token_urlsafe())


def write_password_file(directory: Path, passwords: dict[str, str]) -> Path:
    """Write initial passwords to a root-only CSV so they can be handed out once."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"initial-passwords-{datetime.now():%Y%m%d-%H%M%S}.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["아이디", "처음 비밀번호"])
        writer.writerows(sorted(passwords.items()))
    return path
