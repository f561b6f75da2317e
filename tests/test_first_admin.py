"""`donghaeng up` without --demo: no demo cohort, and the first admin comes from the admin.

Either from the roster's admin rows (``--admin-roster``) or, while the cohort has no admin, from a
one-time token ``up`` prints once (only its hash is stored) for the Korean page /hub/first-admin.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from donghaeng.common.accounts import remove_system_user
from donghaeng.hub.auth import FIRST_ADMIN_TOKEN
from donghaeng.common.cohort import Cohort
from donghaeng.common.settings import Settings, load_settings
from hubclient import HubUser
from labharness import ARTIFACTS, COURSES, Lab, free_port_block, stop_hub, wait_for_hub

pytestmark = pytest.mark.slow
TOKEN_LINE = re.compile(r"토큰 / token: (\S+)")


@contextmanager
def bare_lab() -> Iterator[Lab]:
    """A lab whose data folder and cohort are empty, started by plain `donghaeng up`."""
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="donghaeng-test-", dir="/var/tmp"))
    root.chmod(0o755)
    settings_path = root / "lab.toml"
    settings_path.write_text(f'[lab]\ndata_dir = "{root / "data"}"\nport = {free_port_block()}\n' + COURSES
                             + "[model]\nenabled = false\n", encoding="utf-8")
    settings = load_settings(settings_path)
    lab = Lab(settings_path, settings, settings.lab.public_url, logins={})
    try:
        yield lab
    finally:
        stop_hub(lab)
        for account in Cohort(settings.paths.cohort_db).accounts() if settings.paths.cohort_db.exists() else []:
            remove_system_user(account.login, settings.lab.learner_group)
        shutil.rmtree(root, ignore_errors=True)


def up(lab: Lab, *args: str) -> str:
    """Start the hub with `donghaeng up ARGS`; return what it printed before the hub took over."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"first-admin-up-{secrets.token_hex(3)}.log"
    env = {**os.environ, "DONGHAENG_SETTINGS": str(lab.settings_path), "COLUMNS": "200"}
    with out.open("wb") as log:
        lab.process = subprocess.Popen([sys.executable, "-m", "donghaeng", "up", *args], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_hub(lab.url, lab.process)
    return out.read_text(encoding="utf-8")


def form(lab: Lab, client: httpx.Client, **fields: str) -> httpx.Response:
    """Post the first-admin form as a browser would (the xsrf token of the login page: one per browser)."""
    page = client.get(f"{lab.url}/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    return client.post(f"{lab.url}/hub/first-admin", data={"_xsrf": xsrf, **fields})


def admins(settings: Settings) -> list[str]:
    return [a.login for a in Cohort(settings.paths.cohort_db).accounts() if a.person.role == "admin"]


def test_without_demo_the_token_sets_up_the_first_admin_once():
    with bare_lab() as lab:
        printed = up(lab)
        assert "데모 계정" not in printed
        assert Cohort(lab.settings.paths.cohort_db).accounts() == []  # no demo learners, nobody at all
        token = TOKEN_LINE.search(printed).group(1)
        stored = (lab.settings.paths.state / FIRST_ADMIN_TOKEN).read_text()
        assert token not in stored  # kept hashed
        assert f"{lab.url}/hub/first-admin" in printed

        client = httpx.Client(timeout=60)
        page = client.get(f"{lab.url}/hub/first-admin")
        assert page.status_code == 200 and "첫 관리자 계정 만들기" in page.text
        account = {"login": "boss_kim", "name": "김관리", "new_password": "첫관리자-2026", "confirm_password": "첫관리자-2026"}
        wrong = form(lab, client, token="not-the-token", **account)
        assert wrong.status_code == 403 and "토큰이 맞지 않아요" in wrong.text
        weak = form(lab, client, token=token, **{**account, "new_password": "짧아", "confirm_password": "짧아"})
        assert weak.status_code == 400 and "8자 이상" in weak.text
        bad_login = form(lab, client, token=token, **{**account, "login": "Root!"})
        assert bad_login.status_code == 400 and "쓸 수 없는 아이디예요" in bad_login.text
        assert admins(lab.settings) == []  # refused forms created nothing and kept the token

        done = form(lab, client, token=token, **account)
        assert done.status_code == 200 and "첫 관리자 계정을 만들었어요" in done.text
        assert admins(lab.settings) == ["boss_kim"]
        again = form(lab, client, token=token, **{**account, "login": "second_boss"})
        assert again.status_code in (403, 404)
        assert client.get(f"{lab.url}/hub/first-admin").status_code == 404
        assert admins(lab.settings) == ["boss_kim"]

        boss = HubUser(lab.url, "boss_kim")
        boss.submit_login(account["new_password"])
        boss.make_token()
        assert boss.api("GET", "/hub/api/user").json()["admin"] is True

        # With an admin in the cohort, the next start prints no token.
        stop_hub(lab)
        assert "토큰 / token" not in up(lab)


def test_admin_roster_imports_only_its_admin_rows():
    with bare_lab() as lab:
        roster = lab.settings_path.parent / "roster.csv"
        with roster.open("w", encoding="cp949", newline="") as f:  # as Excel on Korean Windows saves it
            writer = csv.writer(f)
            writer.writerow(["이름", "아이디", "역할", "과정"])
            writer.writerow(["박관리", "admin_park", "관리자", "ai-basics"])
            writer.writerow(["이학생", "learner_lee", "학습자", "ai-basics"])
        printed = up(lab, "--admin-roster", str(roster))
        assert "토큰 / token" not in printed
        password = re.search(r"관리자 admin_park: 처음 비밀번호 (\S+)", printed).group(1)
        assert [a.login for a in Cohort(lab.settings.paths.cohort_db).accounts()] == ["admin_park"]
        page = HubUser(lab.url, "admin_park").submit_login(password)
        assert "새 비밀번호 정하기" in page.text  # the first login asks for a password of their own
