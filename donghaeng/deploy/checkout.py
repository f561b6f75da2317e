"""Who may read the lab's own checkout: learners only the package, the lab's accounts what they need.

Learners' servers import ``donghaeng`` from this checkout (the editable install maps the package to
``<checkout>/donghaeng`` directly), so that folder (and ``pyproject.toml``) is world-readable; the checkout itself is
``0755`` (its names are no secret) and every other entry (``.git``, ``assignments/``, ``tests/``,
``docs/``…) is root's only, including files git adds later: this runs at every ``./lab up``/``test``
and ``donghaeng up``.  The lab's own accounts (course graders, the certificate service) are in the
group ``donghaeng-services``, which reads ``graders/`` (rubrics, the grading config) and ``hub/``
(``lab.toml``).  ``graders/calibration`` (the master grades of the TTT calibration) stays root's only:
the dashboard, a root service, grades candidates against it.

``python -m donghaeng.deploy.checkout`` applies it (the ``lab`` script does).
"""

from __future__ import annotations

import grp
import os
import stat
import subprocess
import sys
from pathlib import Path

from donghaeng.common.settings import REPO_ROOT
from donghaeng.grading.sandbox_launcher import PRIVATE_TMP

SERVICES_GROUP = "donghaeng-services"
# The package and its metadata (image names are read from pyproject.toml): no answers in either.
LEARNER_READABLE = ("donghaeng", "pyproject.toml")
SERVICES_READABLE = ("graders", "hub")
ROOT_ONLY = ("graders/calibration",)


class CheckoutError(Exception):
    """The checkout cannot serve the lab where it is."""


def check_location(root: Path) -> None:
    """Grading kernels each see an empty private ``/tmp`` (and ``/var/tmp`` …): a checkout below one of those
    folders would be invisible to them, and every autograded answer would fail to import the widgets."""
    resolved = root.resolve()
    for folder in PRIVATE_TMP:
        if resolved.is_relative_to(folder):
            raise CheckoutError(
                f"동행랩 폴더({resolved})가 {folder} 아래에 있어요. 채점 커널은 저마다 비어 있는 {folder}를 보기 때문에 "
                f"여기서는 채점할 수 없어요. /opt나 /srv 같은 곳에 받아 주세요. / The checkout is below {folder}, which "
                f"each grading kernel sees as its own empty folder: clone it elsewhere, e.g. /opt or /srv.")


def services_gid() -> int | None:
    try:
        return grp.getgrnam(SERVICES_GROUP).gr_gid
    except KeyError:
        return None


def ensure_services_group() -> int:
    if (gid := services_gid()) is None:
        subprocess.run(["groupadd", "--system", SERVICES_GROUP], check=True, capture_output=True)
        gid = grp.getgrnam(SERVICES_GROUP).gr_gid
    return gid


def add_to_services(account: str) -> None:
    """Put one of the lab's own accounts (never a learner's) into the services group."""
    ensure_services_group()
    if account not in grp.getgrnam(SERVICES_GROUP).gr_mem:
        subprocess.run(["gpasswd", "-a", account, SERVICES_GROUP], check=True, capture_output=True)


def _tree(top: Path) -> list[Path]:
    """*top* and everything below it, links left out (never followed, never changed)."""
    found = [top]
    for folder, dirs, files in os.walk(top):
        found.extend(Path(folder) / name for name in (*dirs, *files))
    return [p for p in found if not p.is_symlink()]


def share_with_services(top: Path, gid: int) -> None:
    """*top* readable by root and the services group only (folders 0750, files 0640)."""
    for path in _tree(top):
        os.chown(path, 0, gid, follow_symlinks=False)
        path.chmod(0o750 if path.is_dir() else 0o640 | (stat.S_IMODE(path.stat().st_mode) & 0o100))


def protect_checkout(root: Path = REPO_ROOT) -> None:
    """Apply the rules above to the checkout at *root* (root only; idempotent, a fraction of a second)."""
    check_location(root)
    gid = ensure_services_group()
    # Listable: where the package is found through a plain sys.path entry (the images' install), Python's
    # import system lists this folder, and 0711 would hide the package. The entries' own modes protect them.
    root.chmod(0o755)
    for entry in root.iterdir():
        if entry.is_symlink():
            continue
        if entry.name in LEARNER_READABLE:
            for path in _tree(entry):
                mode = stat.S_IMODE(path.stat().st_mode)
                path.chmod(mode | (0o755 if path.is_dir() else 0o644))
        elif entry.name in SERVICES_READABLE:
            share_with_services(entry, gid)
        else:
            entry.chmod(stat.S_IMODE(entry.stat().st_mode) & 0o700)
    for rel in ROOT_ONLY:
        if (root / rel).is_dir():
            (root / rel).chmod(0o700)


if __name__ == "__main__":
    try:
        protect_checkout()
    except CheckoutError as e:
        sys.exit(str(e))
