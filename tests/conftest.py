"""Shared fixtures: one real lab (JupyterHub + configurable-http-proxy + nbgrader) per test session."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

import pgharness
from hubclient import HubUser
from labharness import ARTIFACTS, Lab, running_lab

HUB_LOG = ARTIFACTS / "hub.log"

PEOPLE = {
    "learner": ("김하늘", "learner", "ai-basics"),
    "learner2": ("이수민", "learner", "ai-basics"),
    "trainer": ("최은정", "trainer", "ai-basics"),
    "ttt_trainer": ("정미경", "trainer", "ttt"),
    "newcomer": ("박지영", "learner", "ai-basics"),
}


@pytest.fixture(scope="session")
def lab() -> Lab:
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    # The classic set-up without the learner home: learners use nbgrader's own panels and endpoints
    # (tests/test_course_flow.py). The default, with the home, is `home_lab` below.
    with running_lab(PEOPLE, "[home]\nenabled = false\n") as lab:
        yield lab


# the default set-up, learner home on (tests/test_learner_home.py, tests/test_learner_journey.py); no model
HOME_PEOPLE = {
    "learner": ("한지수", "learner", "ai-basics"),
    "walker": ("오세영", "learner", "ai-basics"),  # the browser journey's first login (keep untouched)
    "hostile": ("윤다인", "learner", "ai-basics"),  # tests/test_learner_content_safety.py
    "trainer": ("문가람", "trainer", "ai-basics"),
}


@pytest.fixture(scope="session")
def home_lab() -> Lab:
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    with running_lab(HOME_PEOPLE, "[model]\nenabled = false\n") as lab:
        yield lab


def login_cache(lab: Lab) -> Callable[[str], HubUser]:
    """Log a roster member of *lab* in (choosing a password on first login) once, with an API token."""
    users: dict[str, HubUser] = {}

    def get(key: str) -> HubUser:
        if key not in users:
            users[key] = HubUser.logged_in(lab, key)
        return users[key]

    return get


@pytest.fixture(scope="session")
def logged_in(lab):
    """Log a roster member in (choosing a password on first login) and give them an API token."""
    return login_cache(lab)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster (tests/pgharness.py) for the labs that keep their databases there."""
    if os.geteuid() != 0:
        pytest.skip("the cluster runs as the postgres account: run the suite as root (as .ci/run does)")
    if not pgharness.available():
        pytest.skip("Debian's postgresql is not installed (./lab test installs it)")
    with pgharness.throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kernel_client():
    """The packaged model loaded in this process once (the in-kernel path a learner's kernel uses)."""
    from donghaeng.toolkit.model_client import InKernelClient

    client = InKernelClient()
    client.model  # load the weights here, so individual tests are not charged for it
    return client


def pytest_runtest_setup(item):
    item.hub_log_start = HUB_LOG.stat().st_size if HUB_LOG.is_file() else 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can react to a failure; a failure also shows
    the hub's last error lines (CI prints the report, not the artifacts)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    if report.failed and HUB_LOG.is_file():  # only what hubs wrote while this test ran
        with HUB_LOG.open("rb") as log:
            log.seek(getattr(item, "hub_log_start", 0))
            written = log.read().decode(errors="replace")
        errors = [line for line in written.splitlines()
                  if line.startswith(("[E ", "donghaeng:"))]  # JupyterHub's errors, the lab's start-up notes
        if errors:
            report.sections.append(("hub.log errors (last 20)", "\n".join(errors[-20:])))
    return report
