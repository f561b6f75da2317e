"""Prometheus metrics for scraping: the hub's own, the model service's and grading's.

One hub service, ``prometheus``, stands for the scraper: it runs nothing and has only an API token
(root-only ``<state>/prometheus-token``) whose role grants ``read:metrics`` and access to the services
that serve metrics.  So every endpoint asks for a hub token, and none is open to the network:

* ``/hub/metrics``: JupyterHub's own (``authenticate_prometheus`` stays on: it needs ``read:metrics``);
* ``/services/model/metrics``: requests, queue length, tokens, latency (:mod:`donghaeng.services.model.metrics`);
* ``/services/dashboard/metrics``: grading, from this module.

Grading runs as each course's grader account in short-lived processes (``donghaeng course
autograde``), so its counters use prometheus_client's multiprocess mode: the run writes its values to
``<course>/.donghaeng/metrics/`` (``PROMETHEUS_MULTIPROC_DIR``, set when root starts the run), and the
dashboard, which runs as root, copies those files through :mod:`donghaeng.common.safe_fs` (the grader owns the
folder and could plant links) and adds them up.  Labels carry course ids, never people.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from donghaeng.common import safe_fs
from donghaeng.hub.services import service_token
from donghaeng.common.settings import Course, Settings

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from donghaeng.grading.courses import StepResult

log = logging.getLogger("donghaeng.services.metrics")
SCRAPER = "prometheus"
SCOPE = "read:metrics"
METRICS_DIR = ".donghaeng/metrics"  # below a course folder
PREFIX = "donghaeng_grading_"
# only the multiprocess files of counters and histograms (what grading records), named by process id
_FILE = re.compile(r"^(counter|histogram)_[0-9]+\.db$")
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf"))

_registry = CollectorRegistry()  # the grading process's values; the files are what counts
SUBMISSIONS = Counter(f"{PREFIX}submissions", "Submissions an autograde run finished, by outcome "
                      "(graded, failed: nbgrader could not grade, refused: zero before grading, skipped: unchanged)",
                      ["course", "outcome"], registry=_registry)
SECONDS = Histogram(f"{PREFIX}submission_seconds", "Time to autograde one submission (graded or failed)",
                    ["course"], buckets=DURATION_BUCKETS, registry=_registry)
RUNS = Counter(f"{PREFIX}runs", "Autograde runs finished", ["course"], registry=_registry)


def scraper_service(settings: Settings) -> dict:
    """The scraper's hub service: a token Prometheus sends, nothing running."""
    return {"name": SCRAPER, "api_token": service_token(settings, SCRAPER), "display": False}


def scraper_role(services: Iterable[str]) -> dict:
    """What the scraper may read: /hub/metrics and the ``/metrics`` of *services*."""
    return {"name": "metrics-scraper", "description": "Prometheus reads the lab's metrics",
            "services": [SCRAPER], "scopes": [SCOPE, *(f"access:services!service={name}" for name in services)]}


def may_scrape(model: Mapping[str, object]) -> bool:
    """True when the hub says this token may read metrics (the scraper's, or an admin's)."""
    return SCOPE in (model.get("scopes") or ())


def grading_environment(settings: Settings, course: Course) -> dict[str, str]:
    """What the autograde run needs to keep its counters (made before it starts, as root)."""
    courses = settings.paths.courses
    rel = f"{course.id}/{METRICS_DIR}"
    entry = pwd.getpwnam(course.grader_user)
    with safe_fs.open_dir(courses, rel, create=True, mode=0o700, owner=(entry.pw_uid, entry.pw_gid)):
        pass
    return {"PROMETHEUS_MULTIPROC_DIR": str(courses / rel)}


def record_autograde(course_id: str, result: StepResult, seconds: Mapping[str, float]) -> None:
    """Count one autograde run's outcomes and durations (in the grading process)."""
    for outcome, students in (("graded", result.ok), ("failed", result.failed), ("refused", result.refused),
                              ("skipped", result.skipped)):
        if students:
            SUBMISSIONS.labels(course_id, outcome).inc(len(students))
    for value in seconds.values():
        SECONDS.labels(course_id).observe(value)
    RUNS.labels(course_id).inc()


class _GradingOnly:
    """The multiprocess files' metrics, less what other libraries in the grading process defined."""

    def __init__(self, path: Path) -> None:
        self.inner = MultiProcessCollector(None, path=str(path))

    def collect(self) -> Iterable[Metric]:
        return [m for m in self.inner.collect() if m.name.startswith(PREFIX)]


def _copy_course_files(settings: Settings, course_id: str, into: Path) -> None:
    """Copy the course's counter and histogram files into *into*, each through a checked descriptor;
    what is not a plain file of the grader's is skipped (the admin sees why in the log)."""
    courses = settings.paths.courses
    rel = f"{course_id}/{METRICS_DIR}"
    try:
        with safe_fs.open_dir(courses, rel) as folder:
            names = [n for n in os.listdir(folder) if _FILE.match(n)]
    except FileNotFoundError:  # never graded
        return
    except OSError as e:  # a link or not a folder (UnsafePath): no metrics for this course
        log.warning("grading metrics of %s skipped: %s", course_id, e)
        return
    for name in names:
        kind, pid = name[:-3].split("_")
        try:
            data = safe_fs.read_bytes(courses, f"{rel}/{name}")
        except OSError as e:
            log.warning("grading metrics file skipped: %s", e)
            continue
        (into / f"{kind}_{course_id}-{pid}.db").write_bytes(data)


def grading_metrics(settings: Settings) -> bytes:
    """Prometheus text of every course's grading counters."""
    with tempfile.TemporaryDirectory(prefix="donghaeng-metrics-") as tmp:
        for course in settings.courses:
            _copy_course_files(settings, course.id, Path(tmp))
        registry = CollectorRegistry()
        registry.register(_GradingOnly(Path(tmp)))
        return generate_latest(registry)


class GradingMetricsHandler(HubOAuthenticated, web.RequestHandler):
    """``GET metrics`` of the dashboard service: a token with ``read:metrics`` (never a cookie's redirect)."""

    def initialize(self, settings: Settings, hub_auth: object) -> None:
        self.settings_ = settings
        self.hub_auth = hub_auth

    def get(self) -> None:
        user = self.current_user
        if not user or not may_scrape(user):
            raise web.HTTPError(403, "메트릭은 read:metrics 권한이 있는 토큰으로만 읽을 수 있어요.")
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(grading_metrics(self.settings_))
