"""System accounts for learners, trainers and course graders (embedded, local-process mode).

nbgrader files each submission under the OS user name, so every hub user gets a system account of the
same name, created on first spawn as The Littlest JupyterHub does.  Accounts we create carry our group;
we never adopt or touch an existing account outside it (``root``, ``daemon``…).
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from pathlib import Path


class AccountError(Exception):
    """A system account cannot be created or is not ours."""


def _group_exists(group: str) -> bool:
    try:
        grp.getgrnam(group)
    except KeyError:
        return False
    return True


def is_managed(name: str, group: str) -> bool:
    """True when *name* exists and belongs to the lab's group."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return False
    return entry.pw_gid == grp.getgrnam(group).gr_gid if _group_exists(group) else False


def clashes_with_system(name: str, group: str) -> bool:
    """True when *name* is an existing account that the lab did not create."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return not is_managed(name, group)


def ensure_system_user(name: str, group: str, home_root: Path) -> pwd.struct_passwd:
    """Create the account (private home, mode 0700) unless it exists; return its passwd entry."""
    if clashes_with_system(name, group):
        raise AccountError(f"'{name}' is an existing system account not managed by the lab")
    if not _group_exists(group):
        subprocess.run(["groupadd", "--system", group], check=True, capture_output=True)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        home = home_root / name
        result = subprocess.run(
            ["useradd", "--create-home", "--home-dir", str(home), "--gid", group,
             "--shell", "/bin/bash", "--comment", "donghaeng", name],
            capture_output=True, text=True,
        )
        if result.returncode not in (0, 9):  # 9: created concurrently by another spawn
            raise AccountError(f"useradd {name} failed: {result.stderr.strip()}")
        entry = pwd.getpwnam(name)
    os.chmod(entry.pw_dir, 0o700)
    return entry


def remove_system_user(name: str, group: str) -> None:
    """Delete an account the lab created, with its processes and home (used by tests)."""
    if is_managed(name, group):
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        subprocess.run(["userdel", "--remove", name], capture_output=True)
