"""Docker mode through the real hub: one container per learner, isolation, limits, restart, faults.

Runs against the real dockerd and the learner image (`donghaeng images build learner`).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator

import docker
import httpx
import pytest

from donghaeng.hub.containers import DAEMON_DOWN, START_FAILED, remove_learners
from donghaeng.hub.services import internal_ports
from donghaeng.deploy.image_refs import LEARNER_IMAGE
from hubclient import HubUser
from labharness import ARTIFACTS, Lab, running_lab, start_hub, stop_hub
from test_exchange import NOTEBOOK, open_and_submit

pytestmark = pytest.mark.slow

PEOPLE = {
    "learner": ("김하늘", "learner", "ai-basics"),
    "learner2": ("이수민", "learner", "ai-basics"),
    "trainer": ("최은정", "trainer", "ai-basics"),
    "twice": ("박지영", "learner", "ai-basics"),
    "late": ("한가람", "learner", "ai-basics"),
}
PROBE = """
import json, os, socket, sys, urllib.request
def reach(url, headers=None):
    try:
        req = urllib.request.Request(url, headers=headers or {})
        return urllib.request.urlopen(req, timeout=4).status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return type(e).__name__
token = {"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}
print(json.dumps({
    "hub": reach(os.environ["JUPYTERHUB_API_URL"] + "/", token),
    "model": reach(os.environ["DONGHAENG_MODEL_URL"] + "/models", token),
    "peer": reach(sys.argv[1]),
    "internet": reach("http://1.1.1.1/"),
}))
"""


@pytest.fixture(scope="module")
def dockerd() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        pytest.skip(f"no Docker daemon here: {e}")
    try:
        client.images.get(LEARNER_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"learner image {LEARNER_IMAGE} missing: run `donghaeng images build learner`")
    return client


@pytest.fixture(scope="module")
def lab(dockerd) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab runs as root (as .ci/run does)")
    tag = secrets.token_hex(3)
    subnet = f"172.{29 - secrets.randbelow(8)}.{secrets.randbelow(250)}.0/24"
    extra = (f'[containers]\nnetwork = "dhtest-{tag}"\nsubnet = "{subnet}"\n'
             f'volume_name = "dhtest-{tag}-{{username}}"\n[class_start]\nidle_timeout = 0\n')
    os.environ["DONGHAENG_SPAWNER"] = "docker"
    try:
        with running_lab(PEOPLE, extra) as lab:
            try:
                yield lab
            finally:
                stop_hub(lab)
                remove_learners(lab.settings, list(lab.logins.values()))
    finally:
        os.environ.pop("DONGHAENG_SPAWNER", None)
        for network in dockerd.networks.list(names=[f"dhtest-{tag}"]):
            network.remove()


@pytest.fixture(scope="module")
def users(lab) -> dict[str, HubUser]:
    return {}


def user(lab, users, key) -> HubUser:
    if key not in users:
        users[key] = HubUser.logged_in(lab, key)
    return users[key]


def container_of(dockerd, who: HubUser):
    return dockerd.containers.get(f"donghaeng-{who.name}")


def run_in(container, cmd: list[str], user: str = "jovyan") -> tuple[int, str]:
    code, out = container.exec_run(cmd, user=user)
    return code, out.decode()


def progress_messages(who: HubUser, timeout: float = 120) -> list[dict]:
    """The events a learner's spawn page shows (the hub's progress stream), until it ends."""
    events = []
    with who.http.stream("GET", f"/hub/api/users/{who.name}/server/progress",
                         headers={"Authorization": f"token {who.token}"}, timeout=timeout) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def test_each_learner_gets_a_container_with_their_role_limits(lab, users, dockerd):
    learner, trainer = user(lab, users, "learner"), user(lab, users, "trainer")
    learner.spawn(timeout=180)
    trainer.spawn(timeout=180)
    mine = container_of(dockerd, learner)
    assert mine.image.tags == [LEARNER_IMAGE]
    host = mine.attrs["HostConfig"]
    assert host["Memory"] == 1 << 30 and host["CpuQuota"] == host["CpuPeriod"] == 100_000  # 1G, 1 CPU
    assert host["PidsLimit"] == 512
    assert container_of(dockerd, trainer).attrs["HostConfig"]["Memory"] == 2 << 30
    assert run_in(mine, ["id", "-un"])[1].strip() == "jovyan"
    env = dict(line.split("=", 1) for line in mine.attrs["Config"]["Env"])
    assert env["JUPYTERHUB_USER"] == learner.name  # nbgrader's student id under jovyan

    r = learner.server("PUT", "api/contents/memo.txt",
                       json={"type": "file", "format": "text", "content": "컨테이너 안의 메모"})
    assert r.status_code in (200, 201)
    code, out = run_in(mine, ["cat", "/home/jovyan/memo.txt"])
    assert code == 0 and out == "컨테이너 안의 메모"


def test_learners_cannot_see_each_other_nor_the_internet(lab, users, dockerd):
    learner, other = user(lab, users, "learner"), user(lab, users, "learner2")
    other.spawn(timeout=180)
    mine, theirs = container_of(dockerd, learner), container_of(dockerd, other)
    assert run_in(theirs, ["ls", "/home/jovyan"])[1].split() == []  # their own, empty home
    assert run_in(theirs, ["ls", "/home/jovyan/memo.txt"])[0] != 0

    network = lab.settings.containers.network
    mine.reload()
    my_ip = mine.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    code, out = run_in(theirs, ["python3", "-c", PROBE, f"http://{my_ip}:8888/"])
    reached = json.loads(out)
    assert reached["hub"] == 200, out  # the hub API, through the network's gateway
    assert reached["model"] == 200, out  # the shared model service too
    assert reached["peer"] != 200 and reached["internet"] != 200, out
    # the hub itself does reach that server (through the proxy)
    assert learner.server("GET", "api/contents/memo.txt").status_code == 200


def test_learner_in_a_container_fetches_and_submits_through_the_exchange_service(lab, users, dockerd):
    """No exchange folder is mounted: the module comes from, and the submission goes to, the hub's
    exchange service over the learners' network, and the grader on the host collects it."""
    other = user(lab, users, "learner2")
    other.spawn(timeout=180)
    theirs = container_of(dockerd, other)
    assert not [m for m in theirs.attrs["Mounts"] if "exchange" in m.get("Source", "") + m["Destination"]]
    open_and_submit(lab, other)
    assert run_in(theirs, ["test", "-f", f"/home/jovyan/{NOTEBOOK}"])[0] == 0


def test_hub_restart_readopts_running_containers(lab, users, dockerd):
    learner = user(lab, users, "learner")
    before = container_of(dockerd, learner).id
    stop_hub(lab)
    assert container_of(dockerd, learner).status == "running"  # the hub's exit leaves them be
    start_hub(lab)
    model = learner.api("GET", f"/hub/api/users/{learner.name}").json()
    assert model["servers"][""]["ready"]
    assert container_of(dockerd, learner).id == before
    assert learner.server("GET", "api/contents/memo.txt").json()["content"] == "컨테이너 안의 메모"


def test_same_learner_logging_in_twice_at_once_gets_one_server(lab, dockerd):
    first, second = HubUser.logged_in(lab, "twice"), None
    second = HubUser(lab.url, first.name)
    second.submit_login(lab.passwords[first.name])
    second.make_token()
    results: list[object] = []

    def go(who: HubUser) -> None:
        try:
            results.append(who.spawn(timeout=180))
        except (AssertionError, TimeoutError, httpx.HTTPError) as e:
            results.append(e)

    threads = [threading.Thread(target=go, args=(who,)) for who in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # one start wins; JupyterHub refuses a second start while the first is pending ("pending spawn")
    assert any(isinstance(r, float) for r in results), results
    assert all(isinstance(r, float) or "pending" in str(r) or "500" in str(r) for r in results), results
    assert len(dockerd.containers.list(filters={"name": f"donghaeng-{first.name}"})) == 1
    for who in (first, second):  # both sessions reach the one server
        assert who.server("GET", "api/status").status_code == 200
    first.stop()


def test_container_killed_for_memory_tells_the_learner_and_keeps_files(lab, users, dockerd):
    learner = user(lab, users, "learner")
    mine = container_of(dockerd, learner)
    # the running server becomes the OOM killer's first choice; then something allocates past 1G
    run_in(mine, ["sh", "-c", "for f in /proc/[0-9]*/oom_score_adj; do echo 1000 > $f; done"], user="root")
    run_in(mine, ["python3", "-c", "x = b'1' * (3 << 30)"])
    deadline = time.monotonic() + 30
    while mine.status == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        mine.reload()
    assert mine.attrs["State"]["OOMKilled"], mine.attrs["State"]

    r = learner.api("POST", f"/hub/api/users/{learner.name}/server")  # the hub notices it is gone
    assert r.status_code in (201, 202), r.text
    log = (ARTIFACTS / "hub.log").read_text(encoding="utf-8", errors="replace")
    assert f"{learner.name}'s container was killed for memory" in log
    learner.spawn(timeout=180)
    assert learner.server("GET", "api/contents/memo.txt").json()["content"] == "컨테이너 안의 메모"

    # The spawn page may have gone by too fast; the learner home, where people land, keeps telling
    # them until they press 알겠어요 — with the limit and that their files are safe.
    page = learner.http.get("/services/home/")
    assert page.status_code == 200, page.text
    notice = page.text[page.text.index('class="notice memory-kill"'):]
    notice = notice[:notice.index("</section>")]
    assert "메모리(1G)를 다 써서 멈췄어요" in notice and "저장한 파일은 그대로 있어요" in notice, notice
    again = learner.http.get("/services/home/")  # not gone by merely loading the page
    assert "memory-kill" in again.text
    read = learner.http.post("/services/home/notices/memory/read", data={"_xsrf": learner._xsrf(again.text)})
    assert read.status_code == 200 and "memory-kill" not in read.text, read.text
    assert "memory-kill" not in learner.http.get("/services/home/").text
    assert "memory-kill" not in user(lab, users, "learner2").http.get("/services/home/").text  # theirs only


def _restart_with(lab: Lab, settings_text: str | None = None, env: dict[str, str] | None = None) -> None:
    stop_hub(lab)
    # the old hub's services may still hold their ports for a moment
    deadline = time.monotonic() + 60
    while not all(is_free(port) for port in internal_ports(lab.settings).values()):
        assert time.monotonic() < deadline, "ports of the stopped hub stayed busy"
        time.sleep(1)
    if settings_text is not None:
        lab.settings_path.write_text(settings_text, encoding="utf-8")
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        start_hub(lab)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _failed_spawn_message(lab, key: str) -> str:
    who = HubUser.logged_in(lab, key)
    r = who.api("POST", f"/hub/api/users/{who.name}/server")
    if r.status_code >= 400:
        return r.json().get("message", r.text)
    events = progress_messages(who)
    assert events[-1].get("failed"), events
    return events[-1]["message"]


def _failed_spawn_with_settings(lab, users, change: Callable[[str], str]) -> str:
    """Every server stopped and the hub restarted on lab.toml as *change* makes it: what "late" is told when
    their server fails to start.  lab.toml and the hub are restored afterwards."""
    for who in users.values():
        who.stop()
    original = lab.settings_path.read_text(encoding="utf-8")
    _restart_with(lab, change(original))
    try:
        return _failed_spawn_message(lab, "late")
    finally:
        _restart_with(lab, original)


def test_missing_image_gives_the_build_hint(lab, users):
    message = _failed_spawn_with_settings(
        lab, users, lambda toml: toml.replace("[containers]\n", '[containers]\nimage = "donghaeng/no-such-image:0"\n'))
    assert "이미지가 아직 준비되지 않았어요" in message and "donghaeng images build learner" in message


def test_a_start_docker_refuses_is_not_called_docker_down(lab, users):
    """Docker answers but refuses (here: an admin typed 4M for 4G, under Docker's minimum): the learner is
    not told that Docker is unreachable, and the admin's log carries Docker's reason."""
    log = ARTIFACTS / "hub.log"
    size = log.stat().st_size
    message = _failed_spawn_with_settings(
        lab, users, lambda toml: toml + '\n[containers.limits.learner]\nmemory = "4M"\n')
    assert START_FAILED in message and DAEMON_DOWN not in message
    logged = log.read_bytes()[size:].decode(errors="replace")
    assert "Docker refused to start" in logged and "Minimum memory limit" in logged, logged[-2000:]


def test_docker_down_gives_a_korean_page_and_the_hub_keeps_running(lab):
    log = ARTIFACTS / "hub.log"
    size = log.stat().st_size
    _restart_with(lab, env={"DOCKER_HOST": "unix:///var/tmp/no-dockerd-here.sock"})
    try:
        message = _failed_spawn_message(lab, "late")
        assert message == DAEMON_DOWN or DAEMON_DOWN in message
        assert httpx.get(f"{lab.url}/hub/api", timeout=5).status_code == 200  # still serving
        assert "Docker unreachable while starting" in log.read_bytes()[size:].decode(errors="replace")
    finally:
        _restart_with(lab)
