"""Start a real lab (hub + proxy + nbgrader graders) on free loopback ports, for tests and benchmarks.

The lab runs as root like a real install, with its own data folder, ports and uniquely named
accounts; everything it created (processes, system accounts, folders) is removed afterwards.
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from donghaeng.common.accounts import remove_system_user
from donghaeng.common.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("DONGHAENG_ARTIFACTS", REPO / "artifacts"))
COURSES = '[[courses]]\nid = "ai-basics"\ntitle = "모두를 위한 AI 기초"\n[[courses]]\nid = "ttt"\ntitle = "TTT 강사 과정"\n'


def free_port_block(size: int = 12) -> int:
    """A port p such that p..p+size-1 are all free on loopback."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + size > 65000:
            continue
        try:
            for p in range(base, base + size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port block")


@dataclass
class Lab:
    settings_path: Path
    settings: Settings
    url: str
    logins: dict[str, str]  # role key -> login
    passwords: dict[str, str] = field(default_factory=dict)  # login -> current password
    process: subprocess.Popen | None = None
    verify: ssl.SSLContext | bool = True  # what httpx trusts for lab.url (the test CA when [lab.https] is on)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DONGHAENG_SETTINGS": str(self.settings_path)}
        result = subprocess.run([sys.executable, "-m", "donghaeng", *args], env=env,
                                capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"donghaeng {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


def read_initial_passwords(settings: Settings) -> dict[str, str]:
    passwords: dict[str, str] = {}
    for path in sorted(settings.paths.passwords.glob("*.csv")):
        with path.open(encoding="utf-8-sig") as f:
            passwords.update({login: pw for login, pw in list(csv.reader(f))[1:]})
    return passwords


def wait_for_hub(url: str, process: subprocess.Popen, timeout: float = 240,
                 verify: ssl.SSLContext | bool = True) -> None:
    # generous: `donghaeng up` provisions courses (nbgrader runs) first, slow on a loaded 2-core machine
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hub exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/hub/api", timeout=2, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("hub did not come up")


def stop_hub(lab: Lab) -> None:
    """Stop the hub as an admin would (SIGTERM); learners' servers keep running."""
    if lab.process and lab.process.poll() is None:
        os.killpg(lab.process.pid, signal.SIGTERM)
        try:
            lab.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)
            lab.process.wait()


def start_hub(lab: Lab) -> None:
    env = {**os.environ, "DONGHAENG_SETTINGS": str(lab.settings_path)}
    with (ARTIFACTS / "hub.log").open("ab") as log:
        lab.process = subprocess.Popen([sys.executable, "-m", "donghaeng", "up"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_hub(lab.url, lab.process, verify=lab.verify)


@contextmanager
def running_lab(people: dict[str, tuple[str, str, str]], extra_settings: str = "",
                verify: ssl.SSLContext | bool = True) -> Iterator[Lab]:
    """A started lab whose roster has *people*: key -> (Korean name, role, course).

    *extra_settings* is TOML appended to the lab's settings file (e.g. a ``[model]`` section);
    *verify* is what httpx trusts when it turns ``[lab.https]`` on (an SSL context with the test CA).
    """
    root = Path(tempfile.mkdtemp(prefix="donghaeng-test-", dir="/var/tmp"))
    root.chmod(0o755)
    port = free_port_block()
    suffix = secrets.token_hex(2)
    logins = {key: f"t{suffix}{key.replace('_', '')}"[:32] for key in people}
    settings_path = root / "lab.toml"
    settings_path.write_text(f'[lab]\ndata_dir = "{root / "data"}"\nport = {port}\n' + COURSES + extra_settings,
                             encoding="utf-8")
    settings = load_settings(settings_path)
    lab = Lab(settings_path, settings, settings.lab.public_url, logins, verify=verify)
    with (root / "roster.csv").open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["이름", "아이디", "역할", "과정"])
        writer.writerows((name, logins[key], role, course) for key, (name, role, course) in people.items())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        lab.cli("cohort", "import", str(root / "roster.csv"))
        lab.passwords = read_initial_passwords(settings)
        start_hub(lab)
        yield lab
    finally:
        stop_hub(lab)
        for login in logins.values():
            remove_system_user(login, settings.lab.learner_group)
        shutil.rmtree(root, ignore_errors=True)
