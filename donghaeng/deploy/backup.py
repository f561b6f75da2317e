"""``donghaeng backup`` / ``donghaeng restore``: one archive of every piece of the lab's state.

The archive (``.tar.gz``, root-only 0600: it holds signing keys, password hashes and grades) has
four parts and a manifest:

- ``data/``: the whole ``lab.data_dir`` (hub DB, cohort, certification DB and key, course folders with
  their gradebooks, the exchange store and tokens, issued certificates, released solutions);
- ``homes/<login>/`` (local mode: the OS homes of the cohort's accounts) or ``volumes/<name>/``
  (docker and swarm: each learner's named home volume);
- ``database/*.dump`` (``pg_dump``) for the hub and gradebooks kept in PostgreSQL (``[database]``);
- ``manifest.json`` (last member): format version, time, the settings file's text, and for every
  member its type, owner, mode and SHA-256.

It is consistent while the lab runs: each SQLite database is copied as of one moment (the online
backup API on a file in a root-only folder; a copy under SQLite's reader lock from a checked handle
when another account owns the folder, :func:`donghaeng.common.safe_fs.sqlite_snapshot`).  Root never
follows a path another account can write: every folder is walked through descriptors opened with
``O_NOFOLLOW``; links are stored as links, never followed; FIFOs, sockets and devices are skipped and
reported; a file in a home that is not the home owner's (a hard link to a root file) is skipped too.

Restore first checks every member against the manifest (a tampered or damaged archive changes
nothing), refuses to run while the hub is up unless forced, then builds each tree afresh in a new
root-only folder and swaps it in; what was there before is kept aside, never written through.
"""

from __future__ import annotations

import grp
import hashlib
import io
import json
import os
import pwd
import secrets
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import quote

import httpx

from donghaeng.common import safe_fs
from donghaeng.common.accounts import AccountError, ensure_system_user, is_managed
from donghaeng.common.cohort import Cohort
from donghaeng.common.settings import Settings

FORMAT = "donghaeng-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA, HOMES, VOLUMES, DATABASE = "data", "homes", "volumes", "database"
DEFAULT_DIR = Path("/var/backups/donghaeng")
SQLITE_MAGIC = b"SQLite format 3\x00"
# Files of a running process, not of the lab, and SQLite's side files (each database is copied whole).
RUNTIME_NAMES = frozenset({"jupyterhub.pid", "proxy.pid"})
SQLITE_SIDE_SUFFIXES = ("-journal", "-wal", "-shm")
VOLUME_MOUNT = "/donghaeng-volume"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_SPOOL_BYTES = 16 << 20
_KINDS = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "link"}

Step = Callable[[str], None]


class BackupError(Exception):
    """Backup or restore cannot go on; the message is Korean (with English) for the admin."""


@dataclass
class Report:
    """What a backup or restore did, for the CLI's summary."""

    archive: Path
    files: int = 0
    bytes: int = 0
    databases: list[str] = field(default_factory=list)
    homes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "member (why)", shown to the admin
    kept_aside: list[Path] = field(default_factory=list)  # restore: what was there before
    created_accounts: list[str] = field(default_factory=list)


def _entry(info: tarfile.TarInfo, digest: str | None) -> dict:
    """A member as the manifest records it; computed the same way when writing and when checking."""
    entry = {"type": _KINDS.get(info.type, repr(info.type)), "mode": info.mode, "uid": info.uid,
             "gid": info.gid, "uname": info.uname, "gname": info.gname, "mtime": int(info.mtime)}
    if info.type == tarfile.REGTYPE:
        entry |= {"size": info.size, "sha256": digest}
    if info.type == tarfile.SYMTYPE:
        entry["target"] = info.linkname
    return entry


def _names(st: os.stat_result) -> tuple[str, str]:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = ""
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = ""
    return user, group


def _info(name: str, st: os.stat_result, kind: bytes, *, size: int = 0, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, target
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
    info.uname, info.gname = _names(st)
    return info


def _spool(read: Callable[[int], bytes]) -> tuple[IO[bytes], int, str]:
    """The bytes *read* gives as of now (a file that changes while it is added cannot break the archive)."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    digest, size = hashlib.sha256(), 0
    while chunk := read(1 << 20):
        digest.update(chunk)
        spool.write(chunk)
        size += len(chunk)
    spool.seek(0)
    return spool, size, digest.hexdigest()


class _Writer:
    """Adds members to the archive and records each in the manifest."""

    def __init__(self, tar: tarfile.TarFile, report: Report, step: Step) -> None:
        self.tar, self.report, self.step = tar, report, step
        self.members: dict[str, dict] = {}

    def add(self, info: tarfile.TarInfo, data: IO[bytes] | None = None, digest: str | None = None) -> None:
        self.members[info.name] = _entry(info, digest)
        self.tar.addfile(info, data)
        if info.type == tarfile.REGTYPE:
            self.report.files += 1
            self.report.bytes += info.size
            self.step(info.name)

    def add_fd(self, name: str, fd: int, like: os.stat_result | None = None) -> None:
        """Add the file open at *fd*, recorded with the owner, mode and time of *like* (default: its own)."""
        spool, size, digest = _spool(lambda n: os.read(fd, n))
        with spool:
            self.add(_info(name, like or os.fstat(fd), tarfile.REGTYPE, size=size), spool, digest)

    def skip(self, name: str, why: str) -> None:
        self.report.skipped.append(f"{name} ({why})")

    def walk(self, folder: int, prefix: str, *, owner: int | None = None,
             file_hook: Callable[[int, int, str, str], bool] | None = None,
             skip: Callable[[str], bool] = lambda _: False) -> None:
        """Add everything below the open folder *folder* as ``prefix/...``, following nothing.

        *owner*: regular files of anyone else are skipped (a home's hard link to a root file).
        *file_hook(folder, fd, name, member)* may take a regular file over (True: it was added).
        """
        for name in sorted(os.listdir(folder)):
            member = f"{prefix}/{name}"
            if skip(member):
                continue
            try:
                st = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except FileNotFoundError:  # removed while we walked
                continue
            if stat.S_ISLNK(st.st_mode):
                self.add(_info(member, st, tarfile.SYMTYPE, target=os.readlink(name, dir_fd=folder)))
            elif stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(name, _DIR, dir_fd=folder)
                except OSError:  # replaced by a link or removed since the stat
                    self.skip(member, "바뀌는 중이라 건너뜀 / changed while read")
                    continue
                try:
                    self.add(_info(member, os.fstat(child), tarfile.DIRTYPE))
                    self.walk(child, member, owner=owner, file_hook=file_hook, skip=skip)
                finally:
                    os.close(child)
            elif stat.S_ISREG(st.st_mode):
                if owner is not None and st.st_uid != owner:
                    self.skip(member, "홈 주인의 파일이 아님 / not the home owner's file")
                    continue
                try:
                    fd = os.open(name, _FILE, dir_fd=folder)
                except OSError:
                    self.skip(member, "바뀌는 중이라 건너뜀 / changed while read")
                    continue
                try:
                    now = os.fstat(fd)
                    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                        self.skip(member, "바뀌는 중이라 건너뜀 / changed while read")
                    elif not (file_hook and file_hook(folder, fd, name, member)):
                        self.add_fd(member, fd)
                finally:
                    os.close(fd)
            else:
                kind = "FIFO" if stat.S_ISFIFO(st.st_mode) else "소켓 / socket" if stat.S_ISSOCK(st.st_mode) \
                    else "장치 파일 / device"
                self.skip(member, kind)


# -- backup -------------------------------------------------------------------------------------
def default_archive(now: datetime | None = None) -> Path:
    return DEFAULT_DIR / f"donghaeng-backup-{(now or datetime.now()):%Y%m%d-%H%M%S}.tar.gz"


def _create_private(path: Path) -> IO[bytes]:
    """The new archive: root's, 0600 from its first byte; an existing file is never replaced."""
    if path.parent == DEFAULT_DIR:
        DEFAULT_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError as e:
        raise BackupError(f"이미 있는 파일이에요. 다른 이름을 정해 주세요 / file exists: {path}") from e
    except FileNotFoundError as e:
        raise BackupError(f"저장할 폴더가 없어요 / no such folder: {path.parent}") from e
    os.fchown(fd, 0, 0)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def _postgres_databases(settings: Settings) -> dict[str, str]:
    """Member name -> libpq URL of each PostgreSQL database of the lab (``[database]``): the hub's, and
    each course's gradebook as its own role, with the password from root's ``<state>/db-passwords``."""
    from donghaeng.common import database
    found = {}
    if settings.database.hub_url:
        found[f"{DATABASE}/hub.dump"] = database.hub_url(settings)
    if database.uses_postgres(settings):
        for course in settings.courses:
            found[f"{DATABASE}/course-{course.id}.dump"] = database._course_url(
                settings, course.id, course.grader_user, settings.paths.state / database.PASSWORDS)
    return {name: url.replace("postgresql+psycopg2://", "postgresql://", 1) for name, url in found.items()}


def _pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore`` from PATH or Debian's versioned folder (newest)."""
    import glob

    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise BackupError(f"{name}이 없어요: sudo apt-get install postgresql-client / {name} not found")
    return found


def backup(settings: Settings, archive: Path | None = None, step: Step = lambda _: None) -> Report:
    """Write one archive of the lab's state while it runs; returns what went in."""
    if os.geteuid() != 0:
        raise BackupError("관리자(root) 권한이 필요해요: sudo로 실행해 주세요. / Run as root.")
    root = settings.paths.root
    if not root.is_dir():
        raise BackupError(f"실습 데이터 폴더가 없어요 / no data folder: {root}")
    archive = (archive or default_archive()).absolute()
    report = Report(archive)
    out = _create_private(archive)
    try:
        with out, tarfile.open(fileobj=out, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
            writer = _Writer(tar, report, step)
            _add_data(settings, writer, archive)
            if settings.lab.spawner == "local":
                _add_homes(settings, writer)
            else:
                _add_volumes(settings, writer)
            _add_postgres(settings, writer)
            manifest = {
                "format": FORMAT, "version": FORMAT_VERSION,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "data_dir": str(root), "spawner": settings.lab.spawner,
                "settings_file": str(settings.source or ""),
                "lab_toml": settings.source.read_text(encoding="utf-8") if settings.source else "",
                "skipped": report.skipped, "members": writer.members,
            }
            body = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(body))
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    return report


def _add_data(settings: Settings, writer: _Writer, archive: Path) -> None:
    root = settings.paths.root

    def skip(member: str) -> bool:
        path = PurePosixPath(member)
        return (path.name in RUNTIME_NAMES or path.name.endswith(SQLITE_SIDE_SUFFIXES)
                or root / path.relative_to(DATA) == archive)

    def database(folder: int, fd: int, name: str, member: str) -> bool:
        if os.pread(fd, len(SQLITE_MAGIC), 0) != SQLITE_MAGIC:
            return False
        rel = PurePosixPath(member).relative_to(DATA)
        try:
            with _sqlite_copy(root, rel, folder, name) as copy, open(copy, "rb") as f:
                writer.add_fd(member, f.fileno(), like=os.fstat(fd))  # the copy, as the original is owned
        except (sqlite3.DatabaseError, OSError):
            # not a database after all (a learner's file that only starts like one), or a damaged one:
            # its bytes as they are, so that no file can stop the backup
            os.lseek(fd, 0, os.SEEK_SET)
            writer.add_fd(member, fd)
            writer.skip(member, "데이터베이스로 읽지 못해 파일 그대로 넣었어요 / stored as a plain file")
            return True
        writer.report.databases.append(str(rel))
        return True

    with safe_fs.open_dir(root.parent, root.name) as top:
        writer.add(_info(DATA, os.fstat(top), tarfile.DIRTYPE))
        writer.walk(top, DATA, file_hook=database, skip=skip)


@contextmanager
def _sqlite_copy(root: Path, rel: PurePosixPath, folder: int, name: str) -> Iterator[Path]:
    """A consistent private copy of the database *root*/*rel*, checked (``quick_check``)."""
    here = os.fstat(folder)
    with tempfile.TemporaryDirectory(prefix="donghaeng-backup-") as tmp:
        copy = Path(tmp) / "copy.sqlite"
        if here.st_uid == 0 and not here.st_mode & 0o022:
            # A root-only folder: nobody can swap the name, so SQLite opens it through the descriptor's
            # folder and copies it with the online backup API (WAL and open transactions included).
            source = sqlite3.connect(f"file:{quote(f'/proc/self/fd/{folder}/{name}')}?mode=ro", uri=True, timeout=60)
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
        else:  # another account's folder: read it through a checked handle under the reader lock
            with safe_fs.sqlite_snapshot(root, rel) as snapshot:
                shutil.copyfile(snapshot, copy)
        db = sqlite3.connect(copy)
        try:
            (result,) = db.execute("PRAGMA quick_check").fetchone()
        finally:
            db.close()
        if result != "ok":
            raise sqlite3.DatabaseError(f"quick_check of {rel}: {result}")
        yield copy


def _cohort_logins(settings: Settings) -> list[str]:
    db = settings.paths.cohort_db
    return [a.login for a in Cohort(db).accounts()] if db.exists() else []


def _add_homes(settings: Settings, writer: _Writer) -> None:
    """Each cohort account's OS home, as that account owns it; links kept, nothing followed."""
    group = settings.lab.learner_group
    for login in _cohort_logins(settings):
        if not is_managed(login, group):  # never logged in: no account, no home yet
            continue
        entry = pwd.getpwnam(login)
        home = Path(entry.pw_dir)
        member = f"{HOMES}/{login}"
        try:
            with safe_fs.open_dir(home.parent, home.name) as top:
                st = os.fstat(top)
                if st.st_uid != entry.pw_uid:
                    writer.skip(member, "홈 주인이 계정과 달라요 / home not owned by the account")
                    continue
                writer.add(_info(member, st, tarfile.DIRTYPE))
                writer.walk(top, member, owner=entry.pw_uid)
        except (FileNotFoundError, safe_fs.UnsafePath):
            writer.skip(member, "홈 폴더가 없거나 링크예요 / home missing or a link")
            continue
        writer.report.homes.append(login)


def _volume_names(settings: Settings) -> dict[str, str]:
    return {settings.containers.volume_name.format(username=login): login for login in _cohort_logins(settings)}


@contextmanager
def _volume_container(settings: Settings, volume: str) -> Iterator[tuple[object, str]]:
    """A created (never started) container of the learner image with *volume* mounted, for the
    archive API; removed afterwards."""
    from donghaeng.hub.containers import docker_client, learner_image

    client = docker_client()
    config = client.create_host_config(binds={volume: {"bind": VOLUME_MOUNT, "mode": "rw"}},
                                       network_mode="none")
    container = client.create_container(learner_image(settings), command=["true"], host_config=config,
                                        network_disabled=True, labels={"donghaeng.deploy.backup": "1"})
    try:
        yield client, container["Id"]
    finally:
        client.remove_container(container["Id"], force=True)


def _add_volumes(settings: Settings, writer: _Writer) -> None:
    """Each learner's home volume, read through Docker's archive API; only files, folders and links kept."""
    from donghaeng.hub.containers import docker_client

    try:
        existing = {v["Name"] for v in docker_client().volumes().get("Volumes") or []}
    except Exception as e:  # docker.errors.DockerException and connection errors alike
        raise BackupError(f"Docker에 연결하지 못해 학습자 볼륨을 백업할 수 없어요 / Docker unreachable: {e}") from e
    for volume, login in _volume_names(settings).items():
        if volume not in existing:
            continue
        with _volume_container(settings, volume) as (client, cid):
            stream, _ = client.get_archive(cid, VOLUME_MOUNT)
            with tempfile.TemporaryFile() as raw:
                for chunk in stream:
                    raw.write(chunk)
                raw.seek(0)
                with tarfile.open(fileobj=raw, mode="r|") as inner:
                    for info in inner:
                        rel = PurePosixPath(info.name).relative_to(PurePosixPath(VOLUME_MOUNT).name)
                        name = f"{VOLUMES}/{volume}" + ("" if str(rel) == "." else f"/{rel}")
                        # Docker's tar keeps the type bits in the mode and the old name in a PAX header
                        info.name, info.mode, info.pax_headers = name, stat.S_IMODE(info.mode), {}
                        if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                            info.type = tarfile.REGTYPE
                            spool, size, digest = _spool(inner.extractfile(info).read)
                            with spool:
                                writer.add(info, spool, digest)
                        elif info.type in (tarfile.DIRTYPE, tarfile.SYMTYPE):
                            writer.add(info)
                        else:
                            writer.skip(name, "링크·파일·폴더가 아님 / not a file, folder or link")
        writer.report.homes.append(login)


def _add_postgres(settings: Settings, writer: _Writer) -> None:
    """PostgreSQL databases: ``pg_dump`` takes one consistent snapshot of each itself."""
    for member, url in _postgres_databases(settings).items():
        with tempfile.TemporaryDirectory(prefix="donghaeng-pg-") as tmp:
            dump = Path(tmp) / "dump"
            result = subprocess.run([_pg_tool("pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={url}"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise BackupError(f"PostgreSQL 백업(pg_dump)이 실패했어요 / pg_dump failed: {result.stderr.strip()}")
            with open(dump, "rb") as f:
                writer.add_fd(member, f.fileno())
        writer.report.databases.append(member)


# -- restore ------------------------------------------------------------------------------------
def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return (not path.is_absolute() and ".." not in path.parts and "\n" not in name
            and path.parts[:1] in ((DATA,), (HOMES,), (VOLUMES,), (DATABASE,)))


def verify_archive(archive: Path, step: Step = lambda _: None) -> dict:
    """The archive's manifest, once every member matches it; else a Korean :class:`BackupError`."""
    try:
        tar = tarfile.open(archive, mode="r:*")
    except FileNotFoundError as e:
        raise BackupError(f"백업 파일이 없어요 / no such file: {archive}") from e
    except (tarfile.TarError, OSError) as e:
        raise BackupError(f"동행랩 백업 파일이 아니거나 망가졌어요 / not a readable backup: {archive}") from e
    manifest, seen, unsafe = None, {}, []
    try:
        with tar:
            for info in tar:
                if info.name == MANIFEST and info.isreg():
                    manifest = json.loads(tar.extractfile(info).read())
                    continue
                if not _safe_member(info.name):
                    unsafe.append(info.name)
                    continue
                digest = None
                if info.isreg():
                    source = tar.extractfile(info)
                    digest = hashlib.sha256()
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                    digest = digest.hexdigest()
                    step(info.name)
                seen[info.name] = _entry(info, digest)
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise BackupError(f"백업 파일이 망가졌어요(끝까지 읽지 못했어요). 복원하지 않았어요 / damaged archive: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"동행랩 백업 파일이 아니에요(목록 manifest.json이 없어요). 복원하지 않았어요 / "
                          f"not a Donghaeng backup: {archive}")
    if manifest.get("version", 0) > FORMAT_VERSION:
        raise BackupError("더 새 버전의 동행랩이 만든 백업이에요. 동행랩을 먼저 업데이트해 주세요 / "
                          "made by a newer version")
    expected = manifest.get("members") or {}
    bad = sorted(n for n in expected.keys() | seen.keys() if expected.get(n) != seen.get(n)) + unsafe
    if bad:
        raise BackupError(f"백업 파일이 바뀌었거나 망가졌어요: 목록(manifest)의 체크섬과 맞지 않는 항목이 "
                          f"{len(bad)}개 있어요(예: {bad[0]}). 아무것도 복원하지 않았어요. / "
                          f"checksum mismatch in {len(bad)} members; nothing was restored")
    return manifest


def lab_running(settings: Settings) -> bool:
    """True when this lab's hub runs: its pid file names a live jupyterhub, or its API answers."""
    with suppress(OSError, ValueError):
        pid = int((settings.paths.state / "jupyterhub.pid").read_text().strip())
        if b"jupyterhub" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return True
    try:
        return httpx.get(settings.hub_api_url, timeout=2, verify=False).status_code == 200
    except httpx.HTTPError:
        return False


class _Owners:
    """Owners by name as on this machine (uids differ after a reinstall); lab accounts are created."""

    def __init__(self, settings: Settings, report: Report) -> None:
        self.settings, self.report = settings, report
        self.known: dict[str, tuple[int, int] | None] = {}

    def account(self, login: str) -> pwd.struct_passwd:
        lab = self.settings.lab
        created = not is_managed(login, lab.learner_group)
        try:
            entry = ensure_system_user(login, lab.learner_group, lab.home_root)
        except AccountError as e:
            raise BackupError(f"'{login}' 계정을 만들 수 없어요: 실습실이 만들지 않은 시스템 계정이 이미 있어요. 복원을 "
                              f"멈췄어요(바뀐 것은 없어요) / cannot create account {login}: {e}") from e
        if created:
            self.report.created_accounts.append(login)
        return entry

    def of(self, info: tarfile.TarInfo) -> tuple[int, int] | None:
        """(uid, gid) for a data member; None when its owner has no account here (then: root)."""
        if info.uname not in self.known:
            found = None
            with suppress(KeyError):
                found = pwd.getpwnam(info.uname).pw_uid
            if found is None and info.uname and info.gname == self.settings.lab.learner_group:
                found = self.account(info.uname).pw_uid  # a grader or service account of the lab
            if info.uname == "root":
                found = 0
            gid = None
            with suppress(KeyError):
                gid = grp.getgrnam(info.gname).gr_gid
            self.known[info.uname] = None if found is None else (found, 0 if gid is None else gid)
        return self.known[info.uname]


class _Tree:
    """One tree built afresh in a new root-only folder, then swapped in for *target*.

    Nobody but root can enter the folder while it is built (0700, root's), so nothing can be planted
    in it; folders get their own owners and modes last, deepest first.
    """

    def __init__(self, target: Path, stamp: str) -> None:
        self.target, self.stamp = target, stamp
        self.staging = target.parent / f".{target.name}.restoring-{secrets.token_hex(4)}"
        os.mkdir(self.staging, 0o700)
        os.chown(self.staging, 0, 0)
        self.folders: list[tuple[Path, int, int, int, int]] = []
        self.top: tuple[int, int, int, int] | None = None

    def put(self, tar: tarfile.TarFile, info: tarfile.TarInfo, rel: str, owner: tuple[int, int]) -> None:
        dest = self.staging / rel if rel else self.staging
        uid, gid = owner
        if info.isdir():
            if rel:
                with suppress(FileExistsError):
                    os.mkdir(dest, 0o700)
                self.folders.append((dest, uid, gid, info.mode, int(info.mtime)))
            else:
                self.top = (uid, gid, info.mode, int(info.mtime))
        elif info.issym():
            os.symlink(info.linkname, dest)
            os.lchown(dest, uid, gid)
        else:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(tar.extractfile(info), out, 1 << 20)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, info.mode)
                os.utime(fd, (info.mtime, info.mtime))

    def swap(self) -> Path | None:
        """Put the built tree in place; return where the previous one was kept (None: there was none)."""
        for dest, uid, gid, mode, mtime in sorted(self.folders, key=lambda f: len(f[0].parts), reverse=True):
            os.chown(dest, uid, gid, follow_symlinks=False)
            os.chmod(dest, mode, follow_symlinks=False)
            os.utime(dest, (mtime, mtime), follow_symlinks=False)
        uid, gid, mode, _ = self.top or (0, 0, 0o755, 0)
        os.chown(self.staging, uid, gid)
        kept = None
        if os.path.lexists(self.target):
            kept = self.target.parent / f".{self.target.name}.before-restore-{self.stamp}-{secrets.token_hex(2)}"
            os.rename(self.target, kept)
        os.rename(self.staging, self.target)
        os.chmod(self.target, mode, follow_symlinks=False)
        return kept

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def restore(settings: Settings, archive: Path, *, force: bool = False, step: Step = lambda _: None) -> Report:
    """Put the archive's state back: checked first, refused while the lab runs unless *force*."""
    if os.geteuid() != 0:
        raise BackupError("관리자(root) 권한이 필요해요: sudo로 실행해 주세요. / Run as root.")
    verify_archive(archive, step)
    if not force and lab_running(settings):
        raise BackupError("동행랩이 실행 중이에요. 허브를 먼저 멈춘 뒤(donghaeng up을 Ctrl+C로) 다시 해 주세요. "
                          "꼭 지금 해야 하면 --force를 붙여요. / The lab is running: stop the hub first, or --force.")
    report = Report(archive)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    owners = _Owners(settings, report)
    settings.paths.root.parent.mkdir(parents=True, exist_ok=True)
    data = _Tree(settings.paths.root, stamp)
    homes: dict[str, tuple[_Tree, tuple[int, int]]] = {}
    volumes: dict[str, tuple[IO[bytes], tarfile.TarFile]] = {}
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for info in tar:
                if info.name == MANIFEST:
                    continue
                top, _, rest = info.name.partition("/")
                if top == DATA:
                    owner = owners.of(info)
                    if owner is None:
                        report.skipped.append(f"{info.name} ({info.uname or info.uid} 계정이 없어 root 소유로 "
                                              "복원 / no such account here: restored as root's)")
                        info.mode &= ~(stat.S_ISUID | stat.S_ISGID)
                    data.put(tar, info, rest, owner or (0, 0))
                elif top == HOMES:
                    login, _, sub = rest.partition("/")
                    if login not in homes:
                        entry = owners.account(login)
                        homes[login] = (_Tree(Path(entry.pw_dir), stamp), (entry.pw_uid, entry.pw_gid))
                    tree, owner = homes[login]
                    tree.put(tar, info, sub, owner)  # everything in a home is its owner's
                elif top == VOLUMES:
                    volume, _, sub = rest.partition("/")
                    if volume not in volumes:
                        raw = tempfile.TemporaryFile()
                        volumes[volume] = (raw, tarfile.open(fileobj=raw, mode="w"))
                    _add_volume_member(tar, info, sub, volumes[volume][1])
                elif top == DATABASE:
                    _restore_postgres(settings, tar, info)
                if info.isreg():
                    report.files += 1
                    report.bytes += info.size
                    step(info.name)
        for login, (tree, _) in homes.items():
            if login in report.created_accounts:  # the home useradd just made holds nothing of theirs
                shutil.rmtree(tree.target, ignore_errors=True)
            if kept := tree.swap():
                report.kept_aside.append(kept)
            report.homes.append(login)
        if kept := data.swap():
            report.kept_aside.append(kept)
        for volume, (raw, inner) in volumes.items():
            inner.close()
            _restore_volume(settings, volume, raw)
            report.homes.append(volume)
    except BaseException:
        data.discard()
        for tree, _ in homes.values():
            tree.discard()
        raise
    finally:
        for raw, inner in volumes.values():
            inner.close()
            raw.close()
    return report


def _add_volume_member(tar: tarfile.TarFile, info: tarfile.TarInfo, sub: str, inner: tarfile.TarFile) -> None:
    """Collect a volume's members into one tar for Docker's archive API (numeric owners as stored)."""
    top = PurePosixPath(VOLUME_MOUNT).name
    copy = tarfile.TarInfo(f"{top}/{sub}" if sub else top)
    for attr in ("type", "size", "mode", "uid", "gid", "mtime", "linkname"):
        setattr(copy, attr, getattr(info, attr))
    inner.addfile(copy, tar.extractfile(info) if info.isreg() else None)


def _restore_volume(settings: Settings, volume: str, inner: IO[bytes]) -> None:
    """Recreate the named volume and unpack its files into it; the daemon keeps the owners the tar names
    (``copyUIDGID`` would give everything to the image's user instead)."""
    from donghaeng.hub.containers import docker_client

    client = docker_client()
    with suppress(Exception):
        client.remove_volume(volume, force=True)
    client.create_volume(volume)
    inner.seek(0)
    with _volume_container(settings, volume) as (client, cid):
        client.put_archive(cid, "/", inner)  # streamed from the file


def _restore_postgres(settings: Settings, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
    """One dump back into its database as its own role; ``donghaeng up`` makes the roles, databases and
    default privileges first (so the read-only role can read the tables again: ``--no-acl``)."""
    url = _postgres_databases(settings).get(info.name)
    if url is None:
        raise BackupError(f"백업에 PostgreSQL 데이터베이스({info.name})가 있는데 lab.toml의 [database]에 그 "
                          "주소가 없어요 / the archive holds a PostgreSQL dump this lab.toml has no database for")
    with tempfile.NamedTemporaryFile(prefix="donghaeng-pg-") as dump:
        shutil.copyfileobj(tar.extractfile(info), dump)
        dump.flush()
        result = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-acl",
                                 f"--dbname={url}", dump.name], capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"PostgreSQL 복원(pg_restore)이 실패했어요. 새 서버라면 sudo donghaeng up을 한 번 실행해 "
                          f"역할과 데이터베이스를 만든 뒤 다시 해 주세요 / pg_restore failed: {result.stderr.strip()}")
