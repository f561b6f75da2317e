"""Swarm mode: a learner's server as a Docker Swarm service, spawned through the real hub (single node)."""

from __future__ import annotations

import os
import secrets
import subprocess

import docker
import pytest

from donghaeng.hub.containers import remove_learners
from donghaeng.deploy.image_refs import LEARNER_IMAGE
from hubclient import HubUser
from labharness import running_lab, stop_hub
from test_exchange import open_and_submit

pytestmark = pytest.mark.slow


@pytest.fixture
def swarm():
    if os.geteuid() != 0:
        pytest.skip("the lab runs as root (as .ci/run does)")
    try:
        client = docker.from_env()
        client.images.get(LEARNER_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"learner image {LEARNER_IMAGE} missing: run `donghaeng images build learner`")
    except docker.errors.DockerException as e:
        pytest.skip(f"no Docker daemon here: {e}")
    joined = client.info()["Swarm"]["LocalNodeState"] == "active"
    if not joined:
        subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True,
                       capture_output=True)
    yield client
    if not joined:
        subprocess.run(["docker", "swarm", "leave", "--force"], check=True, capture_output=True)


def test_learner_server_runs_as_a_swarm_service(swarm):
    tag = secrets.token_hex(3)
    os.environ["DONGHAENG_SPAWNER"] = "swarm"
    try:
        with running_lab({"learner": ("김하늘", "learner", "ai-basics")},
                         f'[model]\nenabled = false\n[containers]\nvolume_name = "dhswarm-{tag}-{{username}}"\n'
                         ) as lab:
            try:
                learner = HubUser.logged_in(lab, "learner")
                learner.spawn(timeout=180)
                service = swarm.services.get(f"donghaeng-{learner.name}")
                spec = service.attrs["Spec"]["TaskTemplate"]
                assert spec["ContainerSpec"]["Image"].startswith(LEARNER_IMAGE)
                assert spec["Resources"]["Limits"]["MemoryBytes"] == 1 << 30
                # published on the task's node, not through the routing mesh
                assert [p["PublishMode"] for p in service.attrs["Spec"]["EndpointSpec"]["Ports"]] == ["host"]
                r = learner.server("PUT", "api/contents/memo.txt",
                                   json={"type": "file", "format": "text", "content": "스웜 위의 메모"})
                assert r.status_code in (200, 201), r.text
                open_and_submit(lab, learner)  # the exchange service over the swarm address, no shared folder
                learner.stop()
                assert not swarm.services.list(filters={"name": f"donghaeng-{learner.name}"})
            finally:
                stop_hub(lab)
                for service in swarm.services.list(filters={"name": "donghaeng-"}):
                    if service.name.removeprefix("donghaeng-") in lab.logins.values():
                        service.remove()
                remove_learners(lab.settings, list(lab.logins.values()))
    finally:
        os.environ.pop("DONGHAENG_SPAWNER", None)
