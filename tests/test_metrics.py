"""Prometheus metrics on a real lab: the hub's, the model service's and grading's, scraped as Prometheus
would (the ``prometheus`` service's token) after real traffic, parsed with prometheus_client's parser."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from donghaeng.services import metrics
from donghaeng.hub.services import service_token
from donghaeng.common.settings import PACKAGED_MODEL

pytestmark = pytest.mark.slow
COURSE, ASSIGNMENT = "ai-basics", "m2-work-smarter"


def scrape(lab, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.get(f"{lab.url}{path}", headers=headers, timeout=60, trust_env=False)


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value, from the Prometheus text format."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def scraper(lab) -> str:
    return service_token(lab.settings, metrics.SCRAPER)


def test_hub_metrics_need_the_scrapers_token(lab, scraper, logged_in):
    logged_in("learner")  # real traffic: a login and a token
    assert scrape(lab, "/hub/metrics", None).status_code == 403
    assert scrape(lab, "/hub/metrics", logged_in("trainer").token).status_code == 403
    r = scrape(lab, "/hub/metrics", scraper)
    assert r.status_code == 200, r.text
    parsed = samples(r.text)
    assert value(parsed, "jupyterhub_total_users") >= 2
    handled = sum(v for (name, _), v in parsed.items() if name == "jupyterhub_request_duration_seconds_count")
    assert handled > 0


def test_model_service_metrics_count_a_real_completion(lab, scraper, logged_in):
    if not PACKAGED_MODEL.is_file():
        pytest.skip(f"packaged model missing: {PACKAGED_MODEL} (./lab up installs it)")
    learner = logged_in("learner")
    health = f"{lab.url}/services/model/health"
    deadline = time.monotonic() + 180
    while httpx.get(health, timeout=10, trust_env=False).status_code != 200:
        assert time.monotonic() < deadline, "model service not ready"
        time.sleep(1)
    path = "/services/model/metrics"
    assert scrape(lab, path, learner.token).status_code == 403
    model = lab.settings.models[0].name
    before = samples(scrape(lab, path, scraper).text)
    r = httpx.post(f"{lab.url}/services/model/v1/completions", json={"prompt": "대한민국의 수도는", "max_tokens": 4},
                   headers={"Authorization": f"token {learner.token}"}, timeout=120, trust_env=False)
    assert r.status_code == 200, r.text
    got = scrape(lab, path, scraper)
    assert got.status_code == 200, got.text
    after = samples(got.text)
    ok = dict(model=model, endpoint="completions", status="200")
    assert value(after, "donghaeng_model_requests_total", **ok) == value(before, "donghaeng_model_requests_total", **ok) + 1
    used = r.json()["usage"]
    for kind, key in (("prompt", "prompt_tokens"), ("completion", "completion_tokens")):
        grown = value(after, "donghaeng_model_tokens_total", model=model, kind=kind) - \
            value(before, "donghaeng_model_tokens_total", model=model, kind=kind)
        assert grown == used[key]
    timed = dict(model=model, endpoint="completions")
    assert value(after, "donghaeng_model_request_seconds_count", **timed) == \
        value(before, "donghaeng_model_request_seconds_count", **timed) + 1
    assert (("donghaeng_model_queue_length", frozenset({("model", model)})) in after)
    assert learner.name not in got.text


def put_submission(lab, login: str, notebook: str | None) -> None:
    """A collected submission, as `donghaeng course collect` leaves it (owned by the grader)."""
    course = lab.settings.paths.course_dir(COURSE)
    folder = course / "submitted" / login / ASSIGNMENT
    folder.mkdir(parents=True)
    if notebook:
        shutil.copyfile(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", folder / notebook)
    (folder / "timestamp.txt").write_text("2026-01-05 10:00:00.000000 UTC")
    owner = course.stat()
    for path in (course / "submitted", folder.parent, folder, *folder.iterdir()):
        os.chown(path, owner.st_uid, owner.st_gid)


def test_grading_metrics_count_an_autograde_run(lab, scraper, logged_in):
    path = "/services/dashboard/metrics"
    assert scrape(lab, path, None).status_code == 403
    assert scrape(lab, path, logged_in("trainer").token).status_code == 403  # dashboard yes, metrics no
    before = samples(scrape(lab, path, scraper).text)
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    put_submission(lab, lab.logins["newcomer"], f"{ASSIGNMENT}.ipynb")  # unanswered: graded, zero
    put_submission(lab, lab.logins["learner2"], "wrong-name.ipynb")  # refused before grading
    graded = lab.cli("course", "autograde", COURSE, ASSIGNMENT)
    assert lab.logins["newcomer"] in graded.stdout
    got = scrape(lab, path, scraper)
    assert got.status_code == 200, got.text
    after = samples(got.text)
    for outcome in ("graded", "refused"):
        name, labels = "donghaeng_grading_submissions_total", dict(course=COURSE, outcome=outcome)
        assert value(after, name, **labels) == value(before, name, **labels) + 1, (outcome, got.text)
    name = "donghaeng_grading_submission_seconds_count"
    assert value(after, name, course=COURSE) == value(before, name, course=COURSE) + 1
    assert value(after, "donghaeng_grading_submission_seconds_sum", course=COURSE) > \
        value(before, "donghaeng_grading_submission_seconds_sum", course=COURSE)
    assert value(after, "donghaeng_grading_runs_total", course=COURSE) == \
        value(before, "donghaeng_grading_runs_total", course=COURSE) + 1
    assert not [n for (n, _) in after if not n.startswith(metrics.PREFIX)]  # other libraries' metrics left out


def test_a_planted_link_in_the_metrics_folder_is_not_followed(lab, scraper):
    """The grader owns its course's metrics folder: root's reader skips a link, reads the rest."""
    folder = lab.settings.paths.course_dir(COURSE) / metrics.METRICS_DIR
    if not folder.is_dir():
        pytest.skip("no autograde run yet in this lab")
    planted = folder / "counter_999999.db"
    planted.symlink_to(Path("/etc/shadow"))
    try:
        r = scrape(lab, "/services/dashboard/metrics", scraper)
        assert r.status_code == 200 and "root:" not in r.text
        assert "donghaeng_grading_runs_total" in r.text
    finally:
        planted.unlink()
