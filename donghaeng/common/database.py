"""PostgreSQL for the hub database and the course gradebooks (``[database]`` in lab.toml).

Without ``[database]`` the hub keeps ``<state>/jupyterhub.sqlite`` and each course its
``gradebook.db`` (root's readers copy it first: :func:`donghaeng.common.safe_fs.sqlite_snapshot`).  With it:

* the hub uses ``hub_url`` (``JupyterHub.db_url``);
* each course has a database of its own, ``gradebook_url`` with ``{course}`` replaced, owned by a role
  of its own named like the grader account (``grader-<course>``).  That role may connect to its own
  database only (``CONNECT`` is revoked from ``PUBLIC``), so one course's grader never reaches another
  course's grades.  nbgrader's CLI, formgrader and autograde all read the URL from the course's
  ``nbgrader_config.py`` (``CourseDirectory.db_url``);
* root's readers (learner home, dashboard, certification) use ``donghaeng_reader``, which may only
  ``SELECT``; learners get no role at all.

A database per course rather than a schema per course: nbgrader creates its tables unqualified in the
default schema, ``CONNECT`` is the simplest wall PostgreSQL has, and a course is backed up, restored or
dropped as one database (``pg_dump``).

Passwords never sit in lab.toml (readable by the lab's services).  The admin's roles (``hub_url``,
``admin_url``) take theirs from ``password_file``, a root-only file in libpq's pgpass format (libpq
itself ignores one that others can read).  The roles the lab creates get random passwords: all of
them in ``<state>/db-passwords`` (root only), and each grader's own in ``~grader-<course>/.pgpass``
(mode 0600, that account only).
"""

from __future__ import annotations

import logging
import pwd
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from donghaeng.common import safe_fs
from donghaeng.common.settings import Course, Settings

if TYPE_CHECKING:
    from nbgrader.api import Gradebook

log = logging.getLogger("donghaeng.common.database")
READER_ROLE = "donghaeng_reader"
PASSWORDS = "db-passwords"  # in <state>: every password the lab made, pgpass format


class DatabaseError(Exception):
    """PostgreSQL could not be prepared; the message says what the admin can do (Korean first)."""


def uses_postgres(settings: Settings) -> bool:
    """True when the gradebooks live in PostgreSQL."""
    return settings.database.gradebook_url is not None


def engine_url(url: str, passfile: Path | None) -> str:
    """*url* as SQLAlchemy should open it: with psycopg2 (SQLAlchemy 2.1's default for ``postgresql://``
    is psycopg 3) and libpq's ``passfile`` when there is one."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if passfile is not None:
        query["passfile"] = str(passfile)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2", query=urlencode(query, safe="/")))


def hub_url(settings: Settings) -> str:
    """``JupyterHub.db_url``: the admin's PostgreSQL URL, else the SQLite file in the state folder."""
    db = settings.database
    if db.hub_url is None:
        return f"sqlite:///{settings.paths.hub_db}"
    return engine_url(db.hub_url, db.password_file)


def admin_url(settings: Settings) -> str:
    db = settings.database
    url = db.admin_url or db.hub_url
    assert url is not None  # the settings' validator requires one of them with gradebook_url
    return engine_url(url, db.password_file)


def database_name(settings: Settings, course_id: str) -> str:
    return urlsplit(settings.database.gradebook_url.replace("{course}", course_id)).path.lstrip("/")


def _course_url(settings: Settings, course_id: str, role: str, passfile: Path) -> str:
    parts = urlsplit(settings.database.gradebook_url.replace("{course}", course_id))
    netloc = f"{role}@{parts.netloc}"
    return engine_url(urlunsplit(parts._replace(netloc=netloc)), passfile)


def grader_passfile(course: Course) -> Path:
    return Path(pwd.getpwnam(course.grader_user).pw_dir) / ".pgpass"


def gradebook_url(settings: Settings, course_id: str) -> str:
    """The course's gradebook as its grader reaches it (nbgrader's ``CourseDirectory.db_url``)."""
    if not uses_postgres(settings):
        return f"sqlite:///{settings.paths.course_dir(course_id) / 'gradebook.db'}"
    course = settings.course(course_id)
    return _course_url(settings, course_id, course.grader_user, grader_passfile(course))


def reader_url(settings: Settings, course_id: str) -> str:
    """The course's gradebook for root's readers: the read-only role."""
    return _course_url(settings, course_id, READER_ROLE, settings.paths.state / PASSWORDS)


def course_config(settings: Settings, course: Course) -> str:
    """Lines for the course's ``nbgrader_config.py`` (nothing with SQLite: nbgrader's default file)."""
    if not uses_postgres(settings):
        return ""
    return f"c.CourseDirectory.db_url = {gradebook_url(settings, course.id)!r}\n"


# -- provisioning (root, at every `donghaeng up`) ------------------------------------------------
@contextmanager
def _cursor(url: str) -> Iterator[Any]:
    """A psycopg2 cursor on an autocommit connection (closed afterwards) from a SQLAlchemy-style URL.

    Not ``with connection``: psycopg2 opens a transaction block there, where CREATE DATABASE fails."""
    import psycopg2
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    args = parsed.translate_connect_args(username="user", database="dbname")
    args.update(parsed.query)
    try:
        conn = psycopg2.connect(**args)
    except psycopg2.OperationalError as e:
        where = parsed.render_as_string(hide_password=True)
        raise DatabaseError(f"PostgreSQL에 연결하지 못했어요({where}). 주소·비밀번호 파일·서버가 켜져 있는지 "
                            f"확인해 주세요. / cannot connect to PostgreSQL: {str(e).strip()}") from e
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def _passwords(settings: Settings) -> dict[str, str]:
    path = settings.paths.state / PASSWORDS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    return {fields[3]: fields[4] for line in lines if len(fields := line.split(":", 4)) == 5}


def _password(settings: Settings, role: str) -> str:
    """The role's password, made once and kept in ``<state>/db-passwords`` (root only)."""
    known = _passwords(settings)
    if role not in known:
        known[role] = secrets.token_urlsafe(24)  # no ':' or '\\', so pgpass needs no escaping
        text = "".join(f"*:*:*:{name}:{pw}\n" for name, pw in sorted(known.items()))
        safe_fs.write_text(settings.paths.state, PASSWORDS, text, mode=0o600)
    return known[role]


def _ensure_role(cur: Any, role: str, password: str) -> None:
    from psycopg2 import sql

    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(password)))


def prepare_course(settings: Settings, course: Course) -> None:
    """The course's role, its database (owned by it, closed to everyone else but the reader) and the
    grader's ``~/.pgpass``.  Idempotent; nothing to do with SQLite.  The gradebook's tables are made
    by the grader afterwards (:meth:`donghaeng.grading.courses.CourseRunner.prepare`)."""
    if not uses_postgres(settings):
        return
    from psycopg2 import sql
    from sqlalchemy.engine import make_url

    role, name = course.grader_user, database_name(settings, course.id)
    password = _password(settings, role)
    with _cursor(admin_url(settings)) as cur:
        _ensure_role(cur, role, password)
        _ensure_role(cur, READER_ROLE, _password(settings, READER_ROLE))
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if not cur.fetchone():
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(role)))
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(name),
                                                                         sql.Identifier(READER_ROLE)))
    entry = pwd.getpwnam(role)
    home = Path(entry.pw_dir)
    safe_fs.write_text(home.parent, f"{home.name}/.pgpass", f"*:*:{name}:{role}:{password}\n", mode=0o600,
                       owner=(entry.pw_uid, entry.pw_gid))
    # Root connects as the grader with the password itself, never through a file in the grader's home.
    url = make_url(gradebook_url(settings, course.id)).set(password=password, query={}).render_as_string(
        hide_password=False)
    with _cursor(url) as cur:
        # as the grader: the reader may SELECT what the grader creates (nbgrader's tables)
        cur.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {}; "
                            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
            sql.Identifier(READER_ROLE), sql.Identifier(READER_ROLE)))


def gradebook_exists(settings: Settings, course_id: str) -> bool:
    """True once the course has a gradebook (SQLite: the file; PostgreSQL: made by :func:`prepare_course`)."""
    if uses_postgres(settings):
        return True
    return (settings.paths.course_dir(course_id) / "gradebook.db").exists()


@contextmanager
def reader_gradebook(settings: Settings, course_id: str) -> Iterator[Gradebook | None]:
    """The course's PostgreSQL gradebook through the read-only role; None when it cannot be read
    (not prepared yet, server down), with the reason in the service's log."""
    from nbgrader.api import Gradebook
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    url = reader_url(settings, course_id)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ready = conn.execute(text("SELECT to_regclass('public.course') IS NOT NULL")).scalar() and \
                conn.execute(text("SELECT 1 FROM course WHERE id = :id"), {"id": course_id}).first()
    except SQLAlchemyError as e:
        log.warning("gradebook of %s not readable: %s", course_id, e)
        ready = False
    finally:
        engine.dispose()
    if not ready:
        yield None
        return
    with Gradebook(url, course_id=course_id) as gb:
        yield gb

