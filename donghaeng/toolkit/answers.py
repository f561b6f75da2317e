"""Persist learners' widget answers so that nbgrader autograde can see them.

Widgets keep their state in the browser.  ``nbgrader autograde`` re-executes the submitted notebook
in a fresh kernel without a browser, so whatever a learner clicked is gone by then.  To carry the
choice over, a widget writes it to ``donghaeng_answers.json`` in the kernel's working directory,
which is the folder of the notebook:

* ``nbgrader submit`` copies the whole assignment folder, so the file travels with the submission;
* ``nbgrader autograde`` copies the submitted folder to ``autograded/<learner>/<assignment>/`` and
  runs the notebook there, so a test cell calling :func:`load_answer` reads the learner's file.

The file is a flat JSON object ``{question_id: value}``.  Writes are atomic (temp file in the same
folder + ``os.replace``), so a crash mid-write never leaves half a file behind.  A file that cannot
be parsed is treated as empty; before it is overwritten, it is kept as
``donghaeng_answers.json.bak-<timestamp>`` so nothing a learner did is lost.

Question ids should be unique per assignment folder (e.g. ``"m1-first-steps.q1"``) because all
notebooks of one assignment share the file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from donghaeng.common import safe_fs
__all__ = ["ANSWERS_FILE", "AnswersFileError", "answers_path", "load_all", "load_answer", "save_answer"]

ANSWERS_FILE = "donghaeng_answers.json"
_DEFAULT_MODE = 0o644

log = logging.getLogger(__name__)
_lock = threading.Lock()  # one kernel may have several widgets; serialise read-modify-write


class AnswersFileError(OSError):
    """The answers file could not be written (disk full, read-only folder, ...)."""


def answers_path(directory: str | os.PathLike[str] | None = None) -> Path:
    """Path of the answers file in *directory* (default: the current working directory)."""
    return Path(directory if directory is not None else Path.cwd()) / ANSWERS_FILE


def _check_id(question_id: str) -> None:
    if not isinstance(question_id, str) or not question_id.strip():
        raise ValueError("question_id must be a non-empty string")


def _read(path: Path) -> tuple[dict[str, Any], bool]:
    """Return ``(answers, corrupt)``; a missing file is empty and not corrupt."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, False
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        log.warning("answers file %s is not valid JSON; treating it as empty", path)
        return {}, True
    if not isinstance(data, dict):
        log.warning("answers file %s does not hold a JSON object; treating it as empty", path)
        return {}, True
    return data, False


def _backup(path: Path) -> Path:
    """Copy a corrupt answers file aside (never overwriting an earlier backup)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    shutil.copy2(path, backup)
    log.warning("kept a copy of the unreadable answers file as %s", backup)
    return backup


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = _DEFAULT_MODE
    # the learner's own folder, as they named it (a folder they linked is still theirs)
    safe_fs.write_text(path.parent.resolve(), path.name, text, mode=mode)


def load_all(directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """All saved answers (empty if the file is missing or unreadable)."""
    return _read(answers_path(directory))[0]


def load_answer(question_id: str, default: Any = None, *, directory: str | os.PathLike[str] | None = None) -> Any:
    """The saved answer for *question_id*, or *default* if there is none.

    Never raises for a missing or corrupt file: autograde must be able to score such a
    submission as "no answer" instead of crashing.
    """
    _check_id(question_id)
    return load_all(directory).get(question_id, default)


def save_answer(question_id: str, value: Any, *, directory: str | os.PathLike[str] | None = None) -> None:
    """Save *value* (anything JSON can hold) as the answer to *question_id*, keeping other answers.

    Raises ``TypeError`` for a value JSON cannot hold and :class:`AnswersFileError` when the file
    cannot be written.
    """
    _check_id(question_id)
    try:
        json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"answer for {question_id!r} must be JSON-serialisable: {e}") from e
    path = answers_path(directory)
    with _lock:
        try:
            answers, corrupt = _read(path)
            if corrupt:
                _backup(path)
            answers[question_id] = value
            _write_atomic(path, answers)
        except OSError as e:
            raise AnswersFileError(f"could not save answer to {path}: {e}") from e
