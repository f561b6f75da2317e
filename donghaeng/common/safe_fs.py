"""Root touching folders other accounts can write: walk with ``openat`` and ``O_NOFOLLOW``, never follow a link.

Every function takes a trusted *anchor* (a folder only root can change, e.g. ``<data>/courses``) and a
path below it.  Each component below the anchor is opened relative to its parent's descriptor with
``O_NOFOLLOW``, so a symbolic link planted on the way or at the end is refused, never followed.  Files
are opened ``O_NONBLOCK``, must be regular and belong to the owner of their folder (or root), so a
FIFO, a device or a hard link to someone else's file can neither hang nor fool root.  Writes are atomic:
a new file is created ``O_EXCL`` in the target folder, owned and moded through its descriptor, then
renamed over the name (a rename replaces a planted link, it never writes through it).
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

Owner = tuple[int, int]
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
READ_LIMIT = 64 * 2**20
# SQLite's reader lock: a POSIX read lock on the "shared" byte range (see SQLite's os_unix.c).
_SQLITE_SHARED_FIRST, _SQLITE_SHARED_SIZE = 2**30 + 2, 510


class UnsafePath(OSError):
    """Root refused a path: a link, not a regular file or folder, someone else's file, or too big."""

    def __init__(self, path: Path | str, why: str = "링크이거나 일반 파일·폴더가 아니에요") -> None:
        super().__init__(errno.EPERM, f"안전하지 않은 경로라서 건드리지 않았어요({why}): {path} / refused unsafe path")
        self.filename = str(path)


def _parts(rel: str | os.PathLike[str]) -> tuple[str, ...]:
    parts = tuple(p for p in PurePosixPath(rel).parts if p != ".")
    if any(p in ("..", "/") for p in parts):
        raise ValueError(f"not a path below the anchor: {rel}")
    return parts


def _open_child(parent: int, name: str, shown: Path, create: bool, mode: int, owner: Owner | None) -> int:
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(shown) from e
        raise
    with suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent)
    try:
        child = os.open(name, _DIR, dir_fd=parent)
    except OSError as e:  # replaced by a link between mkdir and open
        raise UnsafePath(shown) from e
    if owner is not None:
        os.fchown(child, *owner)
    os.fchmod(child, mode)
    return child


@contextmanager
def open_dir(anchor: Path, rel: str | os.PathLike[str] = "", *, create: bool = False, mode: int = 0o700,
             owner: Owner | None = None) -> Iterator[int]:
    """A descriptor of the folder *anchor*/*rel*; *create* makes missing folders (*mode*, *owner*)."""
    fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in _parts(rel):
            child = _open_child(fd, name, anchor / rel, create, mode, owner)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_file(anchor: Path, rel: str | os.PathLike[str]) -> Iterator[int]:
    """A read-only descriptor of the regular file *anchor*/*rel*, owned by its folder's owner or root."""
    rel = PurePosixPath(rel)
    with open_dir(anchor, rel.parent) as folder:
        try:
            fd = os.open(rel.name, _FILE, dir_fd=folder)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENXIO):  # a link; a FIFO or socket without a reader
                raise UnsafePath(anchor / rel) from e
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePath(anchor / rel)
            if st.st_uid not in (0, os.fstat(folder).st_uid):
                raise UnsafePath(anchor / rel, "폴더 주인의 파일이 아니에요")
            yield fd
        finally:
            os.close(fd)


def read_bytes(anchor: Path, rel: str | os.PathLike[str], limit: int = READ_LIMIT) -> bytes:
    with open_file(anchor, rel) as fd:
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UnsafePath(anchor / rel, "너무 커요")
        return b"".join(chunks)


def read_text(anchor: Path, rel: str | os.PathLike[str], limit: int = READ_LIMIT) -> str:
    return read_bytes(anchor, rel, limit).decode("utf-8")


def write_bytes(anchor: Path, rel: str | os.PathLike[str], data: bytes, *, mode: int = 0o644,
                owner: Owner | None = None, dir_mode: int = 0o700) -> None:
    """Atomically put *data* at *anchor*/*rel* (missing folders made with *dir_mode*), owned by *owner*."""
    rel = PurePosixPath(rel)
    with open_dir(anchor, rel.parent, create=True, mode=dir_mode, owner=owner) as folder:
        tmp = f".{rel.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                if owner is not None:
                    os.fchown(f.fileno(), *owner)
                os.fchmod(f.fileno(), mode)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename: a crash leaves the old or the new file
            os.replace(tmp, rel.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException as e:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=folder)
            if isinstance(e, IsADirectoryError):
                raise UnsafePath(anchor / rel) from e
            raise


def write_text(anchor: Path, rel: str | os.PathLike[str], text: str, **kwargs: object) -> None:
    write_bytes(anchor, rel, text.encode("utf-8"), **kwargs)  # type: ignore[arg-type]


def copy_tree(source: Path, anchor: Path, rel: str | os.PathLike[str], owner: Owner, *,
              ignore: tuple[str, ...] = ()) -> None:
    """Copy the trusted folder *source* to the new folder *anchor*/*rel*, every entry owned by *owner*.

    The destination must not exist yet (``FileExistsError``); nothing in it is ever followed.
    """
    rel = PurePosixPath(rel)
    with open_dir(anchor, rel.parent) as parent:
        os.mkdir(rel.name, 0o700, dir_fd=parent)
    with open_dir(anchor, rel) as top:
        _copy_into(source, top, owner, ignore)
        os.fchown(top, *owner)
        os.fchmod(top, 0o755)


def _copy_into(source: Path, folder: int, owner: Owner, ignore: tuple[str, ...]) -> None:
    for entry in os.scandir(source):
        if entry.name in ignore or entry.is_symlink():
            continue
        if entry.is_dir():
            os.mkdir(entry.name, 0o700, dir_fd=folder)
            child = os.open(entry.name, _DIR, dir_fd=folder)
            try:
                _copy_into(Path(entry.path), child, owner, ignore)
                os.fchown(child, *owner)
                os.fchmod(child, 0o755)
            finally:
                os.close(child)
        elif entry.is_file():
            fd = os.open(entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=folder)
            with os.fdopen(fd, "wb") as out, open(entry.path, "rb") as src:
                out.write(src.read())
                os.fchown(fd, *owner)
                os.fchmod(fd, 0o644)


def chown_tree(anchor: Path, rel: str | os.PathLike[str], owner: Owner) -> None:
    """``chown -R`` of *anchor*/*rel* that changes links themselves and never descends through one."""
    with open_dir(anchor, rel) as top:
        os.fchown(top, *owner)
        for _, dirs, files, folder in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            for name in (*dirs, *files):
                with suppress(FileNotFoundError):
                    os.chown(name, *owner, dir_fd=folder, follow_symlinks=False)


@contextmanager
def sqlite_snapshot(anchor: Path, rel: str | os.PathLike[str]) -> Iterator[Path]:
    """A private copy of the SQLite file *anchor*/*rel*, taken under SQLite's reader lock.

    SQLite itself resolves links in the names it opens, so root never opens another account's
    database by name: it reads the file through a checked descriptor and opens the copy.
    """
    with open_file(anchor, rel) as fd, tempfile.TemporaryDirectory(prefix="donghaeng-db-") as tmp:
        fcntl.lockf(fd, fcntl.LOCK_SH, _SQLITE_SHARED_SIZE, _SQLITE_SHARED_FIRST)
        copy = Path(tmp) / "snapshot.sqlite"
        with copy.open("wb") as out:
            while chunk := os.read(fd, 1 << 20):
                out.write(chunk)
        fcntl.lockf(fd, fcntl.LOCK_UN, _SQLITE_SHARED_SIZE, _SQLITE_SHARED_FIRST)
        yield copy
