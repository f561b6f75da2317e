"""Restarting the hub mid-class: learners keep their running servers, sessions and work."""

from __future__ import annotations

import pytest

from labharness import start_hub, stop_hub

pytestmark = pytest.mark.slow


def test_hub_restart_keeps_learner_servers_and_sessions(lab, logged_in):
    learner = logged_in("learner")
    learner.spawn()
    r = learner.server("PUT", "api/contents/memo.txt",
                       json={"type": "file", "format": "text", "content": "재시작 전에 쓴 메모"})
    assert r.status_code in (200, 201)

    stop_hub(lab)
    start_hub(lab)

    model = learner.api("GET", f"/hub/api/users/{learner.name}").json()
    assert model["servers"][""]["ready"]  # re-adopted, not restarted
    memo = learner.server("GET", "api/contents/memo.txt").json()
    assert memo["content"] == "재시작 전에 쓴 메모"
    assert "동행랩에 로그인해요" not in learner.http.get("/hub/home").text  # cookie still valid
