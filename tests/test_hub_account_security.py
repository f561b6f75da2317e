"""Hostile logins on the real hub: guessing loops, roster enumeration by cost, long passwords, a
replayed first-login form, and sessions that must end when a password changes or is reset.

Each test connects from its own loopback address (127.0.0.x), as its own browser behind the proxy,
so that the per-address throttle of one test does not reach the others (which come from 127.0.0.1).
The cost of a login is measured as the hub process's CPU time, not wall-clock time: one bcrypt check
is ~0.25 s of CPU, everything else a few milliseconds.
"""

from __future__ import annotations

import copy
import os
import secrets
import time

import httpx
import pytest

from donghaeng.common.cohort import Cohort
from donghaeng.common.roster import Person
from hubclient import HubUser

pytestmark = pytest.mark.slow
LOGIN_PAGE = "동행랩에 로그인해요"
CHANGE_FORM = "새 비밀번호 정하기"
THROTTLED = "뒤에 다시 해 주세요"
LONG_KOREAN = "가" * 24 + "1"  # 73 bytes in UTF-8, one past bcrypt's limit


def new_accounts(lab, count: int) -> list[tuple[str, str]]:
    """*count* learners added to the running lab's roster: (login, initial password)."""
    prefix = lab.logins["learner"].removesuffix("learner")
    people = [Person(login=f"{prefix}s{secrets.token_hex(3)}", name="시험", role="learner", courses=())
              for _ in range(count)]
    report = Cohort(lab.settings.paths.cohort_db).import_people(people)
    return [(p.login, report.initial_passwords[p.login]) for p in people]


def browser(lab, name: str, address: str = "127.0.0.1") -> HubUser:
    """A HubUser whose connections come from *address* (any 127.0.0.0/8 address is local on Linux)."""
    user = HubUser(lab.url, name)
    user.http = httpx.Client(base_url=lab.url, follow_redirects=True, timeout=60,
                             transport=httpx.HTTPTransport(local_address=address))
    return user


def post_login(user: HubUser, password: str, xsrf: str, **headers: str) -> httpx.Response:
    return user.http.post("/hub/login", headers=headers,
                          data={"username": user.name, "password": password, "_xsrf": xsrf})


def login_xsrf(user: HubUser) -> str:
    return user._xsrf(user.http.get("/hub/login").text)


def hub_cpu_seconds(lab) -> float:
    """User + system CPU time of the hub process, all its threads (bcrypt runs in worker threads)."""
    with open(f"/proc/{lab.process.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def logged_in_with_password(lab, address: str) -> tuple[HubUser, str]:
    """A new learner who has chosen a password (first login done), logged in from *address*."""
    (login, initial), = new_accounts(lab, 1)
    user = browser(lab, login, address)
    form = user.submit_login(initial)
    password = f"{login}-Pw-2026"
    assert user.change_password(form.text, password).status_code == 200
    return user, password


def is_logged_in(user: HubUser) -> bool:
    return LOGIN_PAGE not in user.http.get("/hub/home").text


def test_wrong_passwords_are_throttled_per_account_before_any_bcrypt(lab):
    (target, initial), (other, other_initial) = new_accounts(lab, 2)
    guesser = browser(lab, target, "127.0.0.21")
    xsrf = login_xsrf(guesser)
    for _ in range(5):
        assert post_login(guesser, "guess-1234", xsrf).status_code == 403

    before = hub_cpu_seconds(lab)
    refused = [post_login(guesser, initial, xsrf) for _ in range(10)]  # even the right password waits
    throttled_cpu = hub_cpu_seconds(lab) - before
    for r in refused:
        assert r.status_code == 429 and THROTTLED in r.text and int(r.headers["Retry-After"]) > 0
    assert "jupyterhub-session-id" not in guesser.http.cookies

    # the same address may still log in to another account; one failure there costs one bcrypt
    assert CHANGE_FORM in browser(lab, other, "127.0.0.21").submit_login(other_initial).text
    passer_by = browser(lab, f"{other}x", "127.0.0.21")
    xsrf = login_xsrf(passer_by)
    before = hub_cpu_seconds(lab)
    assert post_login(passer_by, "guess-1234", xsrf).status_code == 403
    one_failure_cpu = hub_cpu_seconds(lab) - before
    assert throttled_cpu < one_failure_cpu / 2, (throttled_cpu, one_failure_cpu)


def test_the_current_password_on_the_change_form_is_throttled_too(lab):
    user, password = logged_in_with_password(lab, "127.0.0.31")
    form = user.http.get("/hub/change-password").text
    for _ in range(5):
        assert user.change_password(form, "later-2027-lab", current="guess-1234").status_code == 400
    throttled = user.change_password(form, "later-2027-lab", current=password)
    assert throttled.status_code == 429 and THROTTLED in throttled.text
    assert browser(lab, user.name, "127.0.0.31").submit_login(password).status_code == 429  # same account


def test_one_address_is_throttled_and_cannot_pose_as_another(lab):
    looper = browser(lab, "x", "127.0.0.22")
    start, answers = time.monotonic(), []
    while 429 not in answers and len(answers) < 80:
        # a new made-up login each time, and a made-up X-Real-Ip header, which the proxy passes on
        # (JupyterHub ties the form's xsrf token to the address, so the form is fetched with it too)
        looper.name = f"nobody{len(answers)}"
        looper.http.headers["X-Real-Ip"] = f"203.0.113.{len(answers)}"
        r = post_login(looper, "guess-1234", login_xsrf(looper))
        answers.append(r.status_code)
    # 30 at once (a class behind one NAT), then one more per 2 s that went by
    assert answers[:30] == [403] * 30
    assert answers[-1] == 429 and len(answers) <= 32 + (time.monotonic() - start) / 2, answers
    assert THROTTLED in r.text
    # another browser is not held back by this one
    assert browser(lab, "nobody-else", "127.0.0.23").submit_login("guess-1234").status_code == 403


def test_a_failed_login_costs_the_same_whether_the_account_exists_and_whatever_its_password(lab):
    (initial_login, _), = new_accounts(lab, 1)
    chosen, _ = logged_in_with_password(lab, "127.0.0.24")
    cpu = {}
    for kind, login in {"unknown": f"{initial_login}zz", "initial password": initial_login,
                        "chosen password": chosen.name}.items():
        user = browser(lab, login, "127.0.0.25")
        xsrf = login_xsrf(user)
        before = hub_cpu_seconds(lab)
        for _ in range(4):
            assert post_login(user, "guess-1234", xsrf).status_code == 403
        cpu[kind] = hub_cpu_seconds(lab) - before
    assert min(cpu.values()) > 0.6 * max(cpu.values()), cpu


def test_a_korean_password_longer_than_72_bytes_is_set_and_logs_in(lab):
    (login, initial), = new_accounts(lab, 1)
    user = browser(lab, login, "127.0.0.26")
    set_long = user.change_password(user.submit_login(initial).text, LONG_KOREAN)
    assert set_long.status_code == 200 and LOGIN_PAGE not in set_long.text

    again = browser(lab, login, "127.0.0.26")
    assert again.submit_login(LONG_KOREAN).status_code == 200 and is_logged_in(again)
    # all 73 bytes count: the first 72 alone are a wrong password
    assert browser(lab, login, "127.0.0.26").submit_login(LONG_KOREAN[:-1]).status_code == 403
    longer = "나" * 30 + "2026"
    changed = again.change_password(again.http.get("/hub/change-password").text, longer, current=LONG_KOREAN)
    assert changed.status_code == 200 and LOGIN_PAGE not in changed.text
    assert browser(lab, login, "127.0.0.26").submit_login(longer).status_code == 200


def test_the_first_login_form_cannot_be_replayed(lab):
    (login, initial), = new_accounts(lab, 1)
    user = browser(lab, login, "127.0.0.27")
    form = user.submit_login(initial)
    copied = browser(lab, login, "127.0.0.27")
    for cookie in user.http.cookies.jar:  # what someone who copied the browser's cookies has
        copied.http.cookies.jar.set_cookie(copy.copy(cookie))
    assert user.change_password(form.text, "mine-2026-lab").status_code == 200

    replay = copied.change_password(form.text, "theirs-2026-lab")
    assert replay.status_code == 403 and "더 쓸 수 없어요" in replay.text
    assert not is_logged_in(copied)
    assert browser(lab, login, "127.0.0.27").submit_login("theirs-2026-lab").status_code == 403
    assert browser(lab, login, "127.0.0.27").submit_login("mine-2026-lab").status_code == 200


def test_a_password_change_ends_the_other_sessions_and_tokens(lab):
    here, password = logged_in_with_password(lab, "127.0.0.28")
    elsewhere = browser(lab, here.name, "127.0.0.29")
    assert elsewhere.submit_login(password).status_code == 200 and is_logged_in(elsewhere)
    elsewhere.make_token()
    assert elsewhere.api("GET", "/hub/api/user").status_code == 200

    form = here.http.get("/hub/change-password")
    assert "다른 기기와 브라우저에서 한 로그인" in form.text
    assert here.change_password(form.text, "later-2027-lab", current=password).status_code == 200
    assert not is_logged_in(elsewhere)
    assert elsewhere.api("GET", "/hub/api/user").status_code == 403
    assert is_logged_in(here)  # the browser that changed it stays logged in


def test_a_reset_by_the_trainer_logs_the_account_out_everywhere(lab):
    user, _ = logged_in_with_password(lab, "127.0.0.30")
    user.make_token()
    assert is_logged_in(user)

    reset = lab.cli("cohort", "reset-password", user.name)
    fresh = reset.stdout.split(":", 1)[1].split()[0]
    deadline = time.monotonic() + 30  # the hub checks for resets every 5 s
    while is_logged_in(user) and time.monotonic() < deadline:
        time.sleep(1)
    assert not is_logged_in(user)
    assert user.api("GET", "/hub/api/user").status_code == 403
    assert CHANGE_FORM in browser(lab, user.name, "127.0.0.30").submit_login(fresh).text
