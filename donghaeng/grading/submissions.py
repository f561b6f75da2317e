"""Why a submission scored what it did, in words a trainer understands.

Two halves, both pure functions of files and nbgrader's log:

* :func:`refusal` runs *before* grading: a submission that is too big, empty, not a notebook or has
  the wrong notebook name is never handed to nbgrader (it would crash, or copy 200 MB around);
  ``CourseRunner.autograde`` records zero for it in the gradebook with the reason;
* :func:`diagnose` runs *after* nbgrader graded: it reads the autograded notebook's error outputs
  and nbgrader's log and names what happened (time or memory limit, too many processes, output cut,
  blocked file or network access, a locked cell that was changed and put back).

Each reason is a short Korean sentence; :data:`REASONS` lists them so tests and docs use one text.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nbformat

__all__ = ["REASONS", "RESTORED_MARK", "diagnose", "failure_reason", "fingerprint", "refusal", "submission_bytes"]

REASONS = {
    "too_big": "제출물이 너무 커요 ({size:.0f} MB, 한도 {limit} MB)",
    "empty": "제출물이 비어 있어요",
    "wrong_name": "노트북 이름이 달라요 (받은 것: {got} · 있어야 할 것: {expected})",
    "not_notebook": "파일이 올바른 노트북 형식이 아니에요 ({name})",
    "metadata": "채점 정보(셀 메타데이터)가 망가졌어요",
    "timeout": "시간 초과 (셀 하나가 제한 시간을 넘겼어요)",
    "memory": "메모리 초과",
    "kernel_died": "커널이 멈췄어요 (메모리 초과일 수 있어요)",
    "processes": "프로세스를 너무 많이 만들었어요",
    "output": "출력이 너무 길어서 잘랐어요",
    "file_size": "너무 큰 파일을 쓰려고 했어요",
    "permission": "허락되지 않은 파일에 접근하려 했어요",
    "network": "네트워크는 쓸 수 없어요",
    "locked_changed": "잠긴 셀이 바뀌었어요(체크섬) — 원래 셀로 되돌려 채점했어요",
    "cell_restored": "지워진 채점 셀이 있어서 되살려 채점했어요",
    "not_answered": "답을 쓰지 않았어요",
    "syntax": "코드에 문법 오류가 있어요",
    "failed_check": "확인을 통과하지 못했어요 ({detail})",
    "zero": "확인 셀을 하나도 통과하지 못했어요",
}
# The Korean text graders/nbgrader_config.py gives nbgrader for a grade cell it adds back.
RESTORED_MARK = "제출물에서 지워져 있어서 채점할 때 되살렸어요"


def submission_bytes(folder: Path, stop_above: int | None = None) -> int:
    """Apparent size of every file under *folder* (symlinks not followed); stops early above *stop_above*."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
            if stop_above is not None and total > stop_above:
                return total
    return total


def fingerprint(folder: Path) -> str:
    """Changes whenever a file of the submission is added, removed, resized or rewritten."""
    digest = hashlib.sha256()
    for dirpath, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            digest.update(f"{os.path.relpath(path, folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _not_a_notebook(path: Path) -> bool:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
            return True
        nbformat.reads(json.dumps(data), as_version=4)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return True
    return False


def refusal(folder: Path, expected: list[str], max_bytes: int) -> str | None:
    """The Korean reason to refuse *folder* before grading, or ``None`` when nbgrader may grade it.

    *expected* are the assignment's notebook file names (``m1.ipynb``).
    """
    size = submission_bytes(folder, stop_above=max_bytes)
    if size > max_bytes:
        return REASONS["too_big"].format(size=submission_bytes(folder) / 2**20, limit=max_bytes // 2**20)
    notebooks = sorted(p.name for p in folder.glob("*.ipynb") if p.is_file())
    present = [name for name in expected if name in notebooks]
    if not present:
        if not notebooks:
            return REASONS["empty"]
        return REASONS["wrong_name"].format(got=", ".join(notebooks), expected=", ".join(expected))
    if all((folder / name).stat().st_size == 0 for name in present):
        return REASONS["empty"]
    for name in present:
        if _not_a_notebook(folder / name):
            return REASONS["not_notebook"].format(name=name)
    return None


def failure_reason(log: str) -> str | None:
    """A known reason why nbgrader refused a submission it was given, from its log."""
    if "Notebook failed to validate" in log or "ValidationError" in log:
        return REASONS["metadata"]
    if "NotJSONError" in log or "Notebook does not appear to be JSON" in log:
        return REASONS["not_notebook"].format(name="ipynb")
    return None


def _errors(nb: nbformat.NotebookNode) -> list[tuple[bool, str, str]]:
    """``(in a grade cell, ename, evalue)`` of every error output, in order."""
    found = []
    for cell in nb.cells:
        grade = bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append((grade, str(output.get("ename", "")), str(output.get("evalue", ""))))
    return found


def _texts(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            parts.append(cell.source)
            for output in cell.get("outputs", []):
                parts.append(str(output.get("text", "")))
                parts.extend(str(line) for line in output.get("traceback", []))
    return "\n".join(parts)


def diagnose(notebooks: list[Path], log: str, score: float | None) -> list[str]:
    """What happened while grading (limits hit, cells put back), and why the score is zero if it is."""
    reasons: list[str] = []

    def add(key: str, **kw: str) -> None:
        text = REASONS[key].format(**kw)
        if text not in reasons:
            reasons.append(text)

    if "Attribute 'checksum' for cell" in log or "Attribute 'locked' for cell" in log:
        add("locked_changed")
    first_failed = ""
    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError):
            continue
        text = _texts(nb)
        if RESTORED_MARK in text:
            add("cell_restored")
        if "Output truncated" in text:
            add("output")
        for in_grade, ename, evalue in _errors(nb):
            if ename in ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError") or "timed out" in evalue:
                add("timeout")
            elif ename == "MemoryError":
                add("memory")
            elif ename == "DeadKernelError":
                add("kernel_died")
            elif ename == "BlockingIOError" or "Resource temporarily unavailable" in evalue:
                add("processes")
            elif "File too large" in evalue:
                add("file_size")
            elif ename == "PermissionError":
                add("permission")
            elif ename in ("URLError", "ConnectionError", "gaierror", "ConnectionRefusedError") or \
                    "unreachable" in evalue.lower():
                add("network")
            elif not first_failed:
                first_failed = f"{ename}: {evalue.strip().splitlines()[0][:120]}" if evalue.strip() else ename
            if ename == "NotImplementedError" and not in_grade:
                add("not_answered")
            elif ename in ("SyntaxError", "IndentationError") and not in_grade:
                add("syntax")
    if "Timeout waiting for execute reply" in log or "Cell execution timed out" in log:
        add("timeout")
    if "Kernel died" in log or "DeadKernelError" in log:
        add("kernel_died")
    if "MemoryError" in log:  # the kernel ran out of memory outside a cell (e.g. buffering huge output)
        add("memory")
    if score == 0 and not reasons:
        if first_failed:
            add("failed_check", detail=first_failed)
        else:
            add("zero")
    return reasons
