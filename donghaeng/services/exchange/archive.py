"""Folders on the wire: an uncompressed tar of regular files, written and read with strict checks.

Both ends use it.  The sender (a learner's server, a grader) packs only regular files it reached without
following a link; the receiver (the exchange service, or a grader collecting) unpacks into a fresh folder
of its own, member by member, refusing links, hard links, devices, FIFOs, names that could leave the
folder or carry control characters, and anything over the limits, before a byte of it is written.  The
messages are Korean, for the learner who sent the files.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CHUNK = 1 << 16
MAX_DEPTH = 16
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024

MSG_BAD_NAME = "파일 이름 {name}은(는) 쓸 수 없는 이름이에요(줄바꿈·제어 문자, '..', '/'로 시작하는 이름, 너무 긴 이름). 이름을 바꿔 주세요."
MSG_LINK = "'{name}'은(는) 바로 가기(링크)라서 보낼 수 없어요. 지우고 다시 해 주세요."
MSG_HARD_LINK = "'{name}'은(는) 다른 파일과 연결된 파일(하드 링크)이라서 보낼 수 없어요. 복사본으로 바꿔 주세요."
MSG_SPECIAL = "'{name}'은(는) 보통 파일이 아니라서(장치·파이프 같은 특수 파일) 보낼 수 없어요. 지우고 다시 해 주세요."
MSG_TOO_MANY = "파일이 너무 많아요(최대 {limit}개). 과제에 필요한 파일만 남겨 주세요."
MSG_FILE_TOO_BIG = "'{name}' 파일이 너무 커요({size}, 최대 {limit}). 큰 파일은 지우고 다시 해 주세요."
MSG_TOO_BIG = "파일을 모두 합쳐 너무 커요(최대 {limit}). 큰 파일은 지우고 다시 해 주세요."
MSG_DUPLICATE = "'{name}' 파일이 두 번 들어 있어요."
MSG_NOT_ARCHIVE = "받은 내용이 파일 묶음(tar)이 아니에요."


class ArchiveRefused(Exception):
    """The files cannot be sent or received as they are; the message tells the learner why, in Korean."""


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_file_bytes: int
    max_total_bytes: int

    def body_bytes(self) -> int:
        """The most a tar within these limits can take on the wire (headers and padding included)."""
        return self.max_total_bytes + self.max_files * 3 * tarfile.BLOCKSIZE + 20 * tarfile.RECORDSIZE


def human(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def check_name(name: str) -> PurePosixPath:
    """*name* as a path inside the folder, or ArchiveRefused: relative, no '.'/'..', no control characters."""
    parts = name.split("/")
    if name.endswith("/"):  # how tar writes a folder
        parts = parts[:-1]
    bad = (not name or name.startswith("/") or len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES
           or len(parts) > MAX_DEPTH
           or any(p in ("", ".", "..") or len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts)
           or any(ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in name))
    if bad:
        raise ArchiveRefused(MSG_BAD_NAME.format(name=repr(name)[:80]))
    return PurePosixPath(*parts)


# -- sending -------------------------------------------------------------------------------------

def gather(folder: Path, ignore: Callable[[str, list[str]], Collection[str]] | None = None) -> list[tuple[str, int]]:
    """(relative name, size) of every regular file under *folder*, found without following links.

    *ignore* is a ``shutil.ignore_patterns``-style callable (nbgrader's ``CourseDirectory.ignore``).  A link,
    a hard-linked file, a device or a FIFO refuses the whole folder: the sender is told to remove it.
    """
    found: list[tuple[str, int]] = []

    def walk(here: Path, prefix: str) -> None:
        names = sorted(os.listdir(here))
        skipped = set(ignore(str(here), names)) if ignore else set()
        for name in names:
            if name in skipped:
                continue
            rel = f"{prefix}{name}"
            check_name(rel)
            st = os.lstat(here / name)
            if stat.S_ISLNK(st.st_mode):
                raise ArchiveRefused(MSG_LINK.format(name=rel))
            if stat.S_ISDIR(st.st_mode):
                walk(here / name, f"{rel}/")
            elif not stat.S_ISREG(st.st_mode):
                raise ArchiveRefused(MSG_SPECIAL.format(name=rel))
            elif st.st_nlink > 1:
                raise ArchiveRefused(MSG_HARD_LINK.format(name=rel))
            else:
                found.append((rel, st.st_size))

    walk(folder, "")
    return found


def check_limits(files: Iterable[tuple[str, int]], limits: Limits) -> None:
    """Refuse before sending what the receiver would refuse (apparent sizes: a sparse file counts in full)."""
    files = list(files)
    if len(files) > limits.max_files:
        raise ArchiveRefused(MSG_TOO_MANY.format(limit=limits.max_files))
    for name, size in files:
        if size > limits.max_file_bytes:
            raise ArchiveRefused(MSG_FILE_TOO_BIG.format(name=name, size=human(size), limit=human(limits.max_file_bytes)))
    if sum(size for _, size in files) > limits.max_total_bytes:
        raise ArchiveRefused(MSG_TOO_BIG.format(limit=human(limits.max_total_bytes)))


def write_tar(folder: Path, files: Iterable[tuple[str, int]], out: BinaryIO) -> None:
    """Pack *files* (from :func:`gather`) into *out*; each is opened without following a link and must
    still be the regular file of the size it had."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, size in files:
            fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                    raise ArchiveRefused(MSG_SPECIAL.format(name=name))
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = size, 0o644, int(st.st_mtime)
                tar.addfile(info, f)


# -- receiving ----------------------------------------------------------------------------------

def _make_dirs(dest: Path, rel: PurePosixPath) -> Path:
    """Create the folders of *rel* under *dest* (which the caller made and owns); nothing there is a link."""
    here = dest
    for part in rel.parts:
        here = here / part
        try:
            os.mkdir(here, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                raise ArchiveRefused(MSG_DUPLICATE.format(name=str(rel))) from None
    return here


def extract_tar(stream: BinaryIO, dest: Path, limits: Limits, drop: Collection[str] = ()) -> list[str]:
    """Unpack the tar in *stream* into the empty folder *dest*; the relative names written.

    Members are checked one by one as they come (streaming, nothing read ahead): only folders and
    regular files, sane names, at most ``limits``.  Top-level names in *drop* (files the receiver
    writes itself, such as ``timestamp.txt``) are skipped.  On refusal *dest* may hold part of the
    files: the caller removes it.
    """
    written: list[str] = []
    count = total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                rel = check_name(member.name)
                if member.isdir():
                    _make_dirs(dest, rel)
                    continue
                if member.issym():
                    raise ArchiveRefused(MSG_LINK.format(name=str(rel)))
                if member.islnk():
                    raise ArchiveRefused(MSG_HARD_LINK.format(name=str(rel)))
                if not member.isreg():
                    raise ArchiveRefused(MSG_SPECIAL.format(name=str(rel)))
                count += 1
                total += member.size
                if count > limits.max_files:
                    raise ArchiveRefused(MSG_TOO_MANY.format(limit=limits.max_files))
                if member.size > limits.max_file_bytes:
                    raise ArchiveRefused(MSG_FILE_TOO_BIG.format(
                        name=str(rel), size=human(member.size), limit=human(limits.max_file_bytes)))
                if total > limits.max_total_bytes:
                    raise ArchiveRefused(MSG_TOO_BIG.format(limit=human(limits.max_total_bytes)))
                if len(rel.parts) == 1 and rel.name in drop:
                    continue
                parent = _make_dirs(dest, rel.parent) if rel.parent.parts else dest
                try:
                    fd = os.open(parent / rel.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644)
                except FileExistsError:
                    raise ArchiveRefused(MSG_DUPLICATE.format(name=str(rel))) from None
                source = tar.extractfile(member)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(CHUNK):
                        out.write(chunk)
                written.append(str(rel))
    except tarfile.TarError as e:
        raise ArchiveRefused(MSG_NOT_ARCHIVE) from e
    return written


def tar_folder(folder: Path, out: BinaryIO) -> None:
    """Pack a folder the packer itself wrote (the service's store): its regular files, links never followed."""
    write_tar(folder, gather(folder), out)
