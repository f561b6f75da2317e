"""The memory notice on the learner home: shown until the learner says they have read it.

When a learner's container is killed for memory, the spawner keeps the kill in its state
(``MEMORY_KILL``: when, and the memory limit) — the hub stores it and hands it to this service in the
learner's server model.  The spawn page mentions it once, but a quick restart can skip that page; the
learner home is where people land after login, so it shows the notice until the learner presses
"알겠어요".  What each learner has read is kept here, keyed by the kill's time, so a later kill shows again.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

#: Key of the last memory kill in a container spawner's state: {"at": ISO time, "memory": "1G"}.
MEMORY_KILL = "memory_kill"
READ_DB = "notices.sqlite"


@dataclass(frozen=True)
class MemoryKill:
    at: str  # Docker's FinishedAt of the killed container: identifies this kill
    memory: str  # the limit, as the learner reads it ("1G")

    @property
    def notice(self) -> str:
        """This kill's key among the notices a learner has read."""
        return f"memory:{self.at}"

    @property
    def when(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.at)
        except ValueError:
            return None


def memory_kill(server: dict | None) -> MemoryKill | None:
    """The last memory kill in a hub server model (``state`` needs the ``admin:server_state`` scope)."""
    kill = ((server or {}).get("state") or {}).get(MEMORY_KILL)
    return MemoryKill(kill["at"], kill["memory"]) if kill else None


class ReadNotices:
    """Which notices each learner has read (a small sqlite file in the lab's state folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(sqlite3.connect(path, timeout=10)) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS read_notices "
                       "(login TEXT NOT NULL, notice TEXT NOT NULL, PRIMARY KEY (login, notice))")

    def is_read(self, login: str, notice: str) -> bool:
        with closing(sqlite3.connect(self.path, timeout=10)) as db:
            return db.execute("SELECT 1 FROM read_notices WHERE login = ? AND notice = ?",
                              (login, notice)).fetchone() is not None

    def mark_read(self, login: str, notice: str) -> None:
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            db.execute("INSERT OR IGNORE INTO read_notices VALUES (?, ?)", (login, notice))
