"""A class on a two-node Swarm (the host engine as manager, a second engine as worker: tests/swarm_nodes.py).

Learners' servers are placed on both nodes; a learner whose server runs on the worker goes through
fetch → submit → autograde → feedback over the exchange service (no shared exchange folder); the hub is
restarted mid-class and nothing is lost; a server started again lands on the node holding its home.
The default set-up: learner home on, learners open and hand in modules with its buttons.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook

from donghaeng.hub.containers import remove_learners
from donghaeng.deploy.image_refs import LEARNER_IMAGE
from hubclient import HubUser
from labharness import Lab, running_lab, start_hub, stop_hub
from notebooks import solved
from swarm_nodes import NodeUnavailable, TwoNodeSwarm, docker, two_node_swarm
from test_course_flow import ASSIGNMENT, COURSE, NOTEBOOK, REPO, WIDGET_ANSWER, put_file
from test_exchange import my_submissions

pytestmark = pytest.mark.slow
PEOPLE = {f"learner{i}": (name, "learner", COURSE) for i, name in enumerate(("김하늘", "이수민", "박지영", "한가람"))}
MEMO = "api/contents/memo.txt"


@pytest.fixture(scope="module")
def swarm() -> TwoNodeSwarm:
    try:
        with two_node_swarm() as swarm:
            yield swarm
    except NodeUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def lab(swarm) -> Lab:
    tag = secrets.token_hex(3)
    os.environ["DONGHAENG_SPAWNER"] = "swarm"
    try:
        with running_lab(PEOPLE, f'[model]\nenabled = false\n[class_start]\nidle_timeout = 0\n'
                         f'[containers]\nvolume_name = "dh2n-{tag}-{{username}}"\n') as lab:
            try:
                yield lab
            finally:
                stop_hub(lab)
                for login in lab.logins.values():
                    docker("service", "rm", f"donghaeng-{login}", check=False)
                remove_learners(lab.settings, list(lab.logins.values()))  # the worker's go with its engine
    finally:
        os.environ.pop("DONGHAENG_SPAWNER", None)


@pytest.fixture(scope="module")
def placed(lab, swarm) -> dict[str, HubUser]:
    """Every learner's server started, one after the other: node id -> the learners placed there."""
    by_node: dict[str, list[HubUser]] = {}
    for key in PEOPLE:
        who = HubUser.logged_in(lab, key)
        who.spawn(timeout=240)
        by_node.setdefault(swarm.node_of(f"donghaeng-{who.name}"), []).append(who)
    return by_node


def on_worker(placed, swarm) -> HubUser:
    assert placed.get(swarm.worker_id), f"no learner on the worker: {placed}"
    return placed[swarm.worker_id][0]


def test_learners_are_placed_on_both_nodes_and_answer_through_the_hub(swarm, placed):
    assert set(placed) == {swarm.manager_id, swarm.worker_id}, placed
    # the learner image reached the worker without a registry, the very one the hub's start left on the manager
    image = ("image", "inspect", "--format", "{{.Id}}", LEARNER_IMAGE)
    assert swarm.worker(*image).stdout == docker(*image).stdout
    for learners in placed.values():
        for who in learners:
            r = who.server("PUT", MEMO, json={"type": "file", "format": "text", "content": f"{who.name}의 메모"})
            assert r.status_code in (200, 201), r.text
    worker_learner = on_worker(placed, swarm)
    # the worker engine itself runs that server's container, and has the memo in its volume
    names = swarm.worker("ps", "--format", "{{.Names}}").stdout.split()
    assert any(n.startswith(f"donghaeng-{worker_learner.name}.") for n in names), names
    assert not docker("ps", "-q", "--filter", f"name=donghaeng-{worker_learner.name}.").stdout.strip()


def submit(learner: HubUser, attempt: int) -> None:
    """The notebook toolbar's 제출하기: the server on its node hands the module to the exchange service."""
    r = learner.server("POST", "donghaeng/api/submit", json={"path": NOTEBOOK, "request_id": f"{learner.name}-{attempt}"})
    assert r.status_code == 200 and "월" in r.json()["receipt"], r.text  # the receipt's Korean date


def test_learner_on_the_worker_fetches_submits_and_gets_feedback(lab, swarm, placed):
    learner = on_worker(placed, swarm)
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    # 시작하기 on the learner home: the server on the worker fetches the module from the exchange service
    opened = learner.server("GET", "donghaeng/open", params={"course": COURSE, "assignment": ASSIGNMENT})
    assert opened.status_code == 200 and str(opened.url).endswith(f"lab/tree/{NOTEBOOK}"), opened.text
    source = nbformat.read(REPO / "assignments" / COURSE / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    released = nbformat.from_dict(learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"])
    put_file(learner, NOTEBOOK, nbformat.writes(solved(released, source)))
    put_file(learner, f"{COURSE}/{ASSIGNMENT}/donghaeng_answers.json", json.dumps(WIDGET_ANSWER, ensure_ascii=False))
    submit(learner, 1)

    assert learner.name in lab.cli("course", "collect", COURSE, ASSIGNMENT).stdout
    lab.cli("course", "autograde", COURSE, ASSIGNMENT)
    with Gradebook(f"sqlite:///{lab.settings.paths.course_dir(COURSE) / 'gradebook.db'}", course_id=COURSE) as gb:
        assert gb.find_submission(ASSIGNMENT, learner.name).code_score == 6
    lab.cli("course", "feedback", COURSE, ASSIGNMENT)
    feedback = learner.http.get(f"/services/home/feedback/{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}")
    assert feedback.status_code == 200 and "점수" in feedback.text, feedback.text[-500:]


def test_hub_restart_mid_class_keeps_servers_and_submissions(lab, swarm, placed):
    learners = [who for group in placed.values() for who in group]
    tasks = {who.name: docker("service", "ps", "-q", "--filter", "desired-state=running",
                              f"donghaeng-{who.name}").stdout.split() for who in learners}
    learner = on_worker(placed, swarm)
    before = my_submissions(lab, learner)
    assert before, "the worker's learner has no submission yet"

    stop_hub(lab)
    start_hub(lab)

    for who in learners:
        assert who.api("GET", f"/hub/api/users/{who.name}").json()["servers"][""]["ready"], who.name
        after = docker("service", "ps", "-q", "--filter", "desired-state=running", f"donghaeng-{who.name}")
        assert after.stdout.split() == tasks[who.name], "the restart replaced a running server"
        assert who.server("GET", MEMO).json()["content"] == f"{who.name}의 메모"
    assert my_submissions(lab, learner)[:len(before)] == before
    # and the class goes on: a new submission from the worker after the restart
    submit(learner, 2)
    assert len(my_submissions(lab, learner)) == len(before) + 1


@pytest.mark.parametrize("node", ["worker", "manager"])
def test_server_started_again_lands_on_the_node_with_its_home(lab, swarm, placed, node):
    node_id = swarm.worker_id if node == "worker" else swarm.manager_id
    who = placed[node_id][-1]
    who.stop()
    who.spawn(timeout=240)
    service = f"donghaeng-{who.name}"
    assert swarm.node_of(service) == node_id
    spec = json.loads(docker("service", "inspect", service).stdout)[0]["Spec"]["TaskTemplate"]
    assert spec["Placement"]["Constraints"] == [f"node.id=={node_id}"]
    assert who.server("GET", MEMO).json()["content"] == f"{who.name}의 메모"  # their home volume came along


def test_distributing_to_an_unreachable_node_says_so_in_korean(tmp_path):
    if os.geteuid() != 0 or docker("image", "inspect", LEARNER_IMAGE, check=False).returncode != 0:
        pytest.skip("needs root and the learner image")
    result = subprocess.run([sys.executable, "-m", "donghaeng", "images", "distribute", "--node",
                             f"unix://{tmp_path}/no-engine.sock"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Docker 엔진에 닿지 못했어요" in " ".join(result.stderr.split()), result.stderr
