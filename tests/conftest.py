"""Shared fixtures: a real lab (JupyterHub + configurable-http-proxy + nbgrader) on loopback.

The lab runs as root like a real install, with its own data folder, ports and uniquely named
accounts, and everything it created (processes, system accounts, folders) is removed afterwards.
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from donghaeng.accounts import remove_system_user
from donghaeng.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("DONGHAENG_ARTIFACTS", REPO / "artifacts"))


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

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DONGHAENG_SETTINGS": str(self.settings_path)}
        result = subprocess.run([sys.executable, "-m", "donghaeng", *args], env=env,
                                capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"donghaeng {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


def write_roster(path: Path, logins: dict[str, str]) -> None:
    rows = [
        ("김하늘", logins["learner"], "learner", "ai-basics"),
        ("이수민", logins["learner2"], "learner", "ai-basics"),
        ("최은정", logins["trainer"], "trainer", "ai-basics"),
        ("정미경", logins["ttt_trainer"], "trainer", "ttt"),
        ("박지영", logins["newcomer"], "learner", "ai-basics"),
    ]
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["이름", "아이디", "역할", "과정"])
        writer.writerows(rows)


def read_initial_passwords(settings: Settings) -> dict[str, str]:
    passwords: dict[str, str] = {}
    for path in sorted(settings.paths.passwords.glob("*.csv")):
        with path.open(encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))[1:]
        passwords.update({login: pw for login, pw in rows})
    return passwords


def wait_for_hub(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hub exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/hub/api", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("hub did not come up")


def start_hub(lab: Lab, log_path: Path) -> None:
    env = {**os.environ, "DONGHAENG_SETTINGS": str(lab.settings_path)}
    log = log_path.open("ab")
    lab.process = subprocess.Popen([sys.executable, "-m", "donghaeng", "up"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_hub(lab.url, lab.process)


def stop_hub(lab: Lab) -> None:
    if lab.process and lab.process.poll() is None:
        os.killpg(lab.process.pid, signal.SIGTERM)
        try:
            lab.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)
            lab.process.wait()


@pytest.fixture(scope="session")
def lab() -> Lab:
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="donghaeng-test-", dir="/var/tmp"))
    root.chmod(0o755)
    port = free_port_block()
    suffix = secrets.token_hex(2)
    logins = {key: f"t{suffix}{key.replace('_', '')}"[:32] for key in
              ("learner", "learner2", "trainer", "ttt_trainer", "newcomer")}
    settings_path = root / "lab.toml"
    settings_path.write_text(
        f'[lab]\ndata_dir = "{root / "data"}"\nport = {port}\n'
        '[[courses]]\nid = "ai-basics"\ntitle = "모두를 위한 AI 기초"\n'
        '[[courses]]\nid = "ttt"\ntitle = "TTT 강사 과정"\n',
        encoding="utf-8",
    )
    settings = load_settings(settings_path)
    lab = Lab(settings_path, settings, f"http://127.0.0.1:{port}", logins)
    write_roster(root / "roster.csv", logins)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        lab.cli("cohort", "import", str(root / "roster.csv"))
        lab.passwords = read_initial_passwords(settings)
        start_hub(lab, ARTIFACTS / "hub.log")
        yield lab
    finally:
        stop_hub(lab)
        for login in logins.values():
            remove_system_user(login, settings.lab.learner_group)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def logged_in(lab):
    """Log a roster member in (changing the initial password once) and give them an API token."""
    from hubclient import HubUser

    users: dict[str, HubUser] = {}

    def get(key: str) -> HubUser:
        if key not in users:
            login = lab.logins[key]
            user = HubUser(lab.url, login)
            page = user.submit_login(lab.passwords[login])
            if "새 비밀번호 정하기" in page.text:  # first login: choose a password of our own
                new = f"{login}-Pw-2026"
                user.change_password(page.text, new)
                lab.passwords[login] = new
            user.make_token()
            users[key] = user
        return users[key]

    return get
