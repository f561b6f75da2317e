"""Class start in the embedded (local) mode: a polite queue, servers prepared before class, idle culling."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from donghaeng.hub.queue import CULLER_SERVICE, prepare_token
from hubclient import HubUser
from labharness import running_lab

pytestmark = pytest.mark.slow

PEOPLE = {
    "a": ("김하늘", "learner", "ai-basics"),
    "b": ("이수민", "learner", "ai-basics"),
    "c": ("박지영", "learner", "ai-basics"),
    "d": ("한가람", "learner", "ttt"),
    "trainer": ("최은정", "trainer", "ai-basics"),
}
EXTRA = "[model]\nenabled = false\n[class_start]\nspawn_concurrency = 1\n"
IDLE = 20


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run as root (as .ci/run does)")
    with running_lab(PEOPLE, EXTRA) as lab:
        yield lab


def progress(who: HubUser) -> list[dict]:
    events = []
    with who.http.stream("GET", f"/hub/api/users/{who.name}/server/progress",
                         headers={"Authorization": f"token {who.token}"}, timeout=180) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def test_a_burst_queues_in_order_with_a_korean_place_and_nobody_fails(lab):
    people = [HubUser.logged_in(lab, key) for key in ("a", "b", "c")]
    for who in people:  # logging in started their servers; begin from stopped ones
        who.stop()
    with ThreadPoolExecutor(len(people) * 2) as pool:  # three at once, one start slot
        posts = [pool.submit(who.api, "POST", f"/hub/api/users/{who.name}/server") for who in people]
        time.sleep(1)
        streams = [pool.submit(progress, who) for who in people]
        assert all(p.result().status_code in (201, 202) for p in posts), [p.result().text for p in posts]
        events = [e for s in streams for e in s.result()]
    messages = [e.get("message", "") for e in events]
    assert any("준비 중이에요. 앞에 1명이 기다리고 있어요" in m for m in messages), messages
    assert any("준비 중이에요. 곧 여러분 차례예요" in m for m in messages), messages
    assert not any(e.get("failed") for e in events), events
    for who in people:
        who.spawn(timeout=180)  # all ready, none timed out
        who.stop()


def ready(lab, login: str) -> bool:
    """Is *login*'s server up (asked with the class-prepare service's token)?"""
    token = prepare_token(lab.settings)
    model = httpx.get(f"{lab.url}/hub/api/users/{login}", headers={"Authorization": f"token {token}"},
                      timeout=10).json()
    return bool(model.get("servers", {}).get("", {}).get("ready"))


def test_class_prepare_starts_the_course_learners_before_they_log_in(lab):
    result = lab.cli("class", "prepare", "--course", "ai-basics")
    assert "준비됨 3명" in result.stdout, result.stdout
    assert all(ready(lab, lab.logins[k]) for k in ("a", "b", "c"))
    assert not ready(lab, lab.logins["d"]) and not ready(lab, lab.logins["trainer"])  # other course, not a learner
    # the learner arrives: straight into the running server, nothing to wait for
    learner = HubUser.logged_in(lab, "a")
    page = learner.http.get("/hub/spawn")
    assert page.url.path.startswith(f"/user/{learner.name}/"), page.url


def test_unknown_course_is_refused_in_korean(lab):
    result = lab.cli("class", "prepare", "--course", "no-such", check=False)
    assert result.returncode == 2
    assert "'no-such' 과정이 설정에 없어요" in result.stderr


def test_idle_servers_are_culled(lab):
    """Its own small lab: a short idle timeout would stop the other tests' servers too."""
    extra = f"[model]\nenabled = false\n[class_start]\nidle_timeout = {IDLE}\n"
    with running_lab({"a": PEOPLE["a"]}, extra) as small:
        learner = HubUser.logged_in(small, "a")
        learner.spawn()
        deadline = time.monotonic() + IDLE * 3
        while time.monotonic() < deadline:
            if not learner.api("GET", f"/hub/api/users/{learner.name}").json()["servers"]:
                return
            time.sleep(2)
    pytest.fail(f"{CULLER_SERVICE} did not stop an idle server within {IDLE * 3}s")


def test_servers_start_by_themselves_before_a_scheduled_class(tmp_path):
    """A class in five minutes (schedule.toml class_start): its learners' servers start with no command;
    a class tomorrow starts nothing yet."""
    now = datetime.now(timezone.utc)
    for course, start in (("morning", now + timedelta(minutes=5)), ("tomorrow", now + timedelta(days=1))):
        (tmp_path / course).mkdir()
        (tmp_path / course / "schedule.toml").write_text(
            f'[m1]\ntitle = "첫 수업"\nclass_start = {start.isoformat()}\n', encoding="utf-8")
    extra = "[model]\nenabled = false\n[class_start]\nprepare_minutes = 10\n" + "".join(
        f'[[courses]]\nid = "{c}"\ntitle = "{c}"\nassignments = "{tmp_path / c}"\n' for c in ("morning", "tomorrow"))
    people = {"early": ("김하늘", "learner", "morning"), "late": ("이수민", "learner", "tomorrow")}
    with running_lab(people, extra) as small:
        deadline = time.monotonic() + 180
        while not ready(small, small.logins["early"]) and time.monotonic() < deadline:
            time.sleep(1)
        assert ready(small, small.logins["early"]), "see artifacts/hub.log (donghaeng class-prepare lines)"
        assert not ready(small, small.logins["late"])
        learner = HubUser.logged_in(small, "early")  # arrives: straight into the running server
        assert learner.http.get("/hub/spawn").url.path.startswith(f"/user/{learner.name}/")
