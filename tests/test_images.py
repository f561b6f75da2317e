"""``donghaeng images build``: offline images that run what they promise, and rebuild only when inputs change.

Runs the real command against the real Docker engine (``./lab test`` starts it and builds the images
first, so here the builds are normally the cached, skipped path).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import docker
import httpx
import jupyterhub
import pytest
from rich.progress import Progress

from donghaeng.hub.containers import LABEL
from donghaeng.deploy.image_refs import GRADER_IMAGE, HUB_IMAGE, LEARNER_IMAGE, docker_ready
from donghaeng.deploy.images import Builder, ImageError
from donghaeng.common.settings import REPO_ROOT

pytestmark = pytest.mark.slow
DONGHAENG = [str(Path(sys.executable).parent / "donghaeng"), "images", "build"]


@pytest.fixture(scope="module", autouse=True)
def engine():
    if os.geteuid() != 0:
        pytest.skip("building images needs root (debootstrap, the Docker socket)")
    if not docker_ready():
        pytest.skip("no Docker engine answers (./lab test starts one)")


def build(*targets: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*DONGHAENG, *targets], capture_output=True, text=True, env={**os.environ,
                                                                                          "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def docker_run(image: str, *command: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "run", "--rm", *options, image, *command], capture_output=True, text=True,
                          timeout=300)


def test_grader_image_runs_python_as_non_root_without_network():
    build("grader")
    probe = ("import os, socket, ipykernel, donghaeng.toolkit.answers, donghaeng.toolkit.widgets.choice\n"
             "print('uid', os.getuid())\n"
             "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=3)\n    print('network: open')\n"
             "except OSError as e:\n    print('network:', e)\n")
    run = docker_run(GRADER_IMAGE, "python", "-c", probe, options=("--network", "none"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("uid ") and not run.stdout.startswith("uid 0\n")
    assert "network: open" not in run.stdout and "unreachable" in run.stdout.lower()


def test_learner_image_runs_singleuser_speaks_korean_and_has_no_model_file():
    build("learner")
    run = docker_run(LEARNER_IMAGE, "jupyterhub-singleuser", "--help-all")
    assert run.returncode == 0 and "JupyterHubSingleUser" in run.stdout, run.stderr[-2000:]
    check = ("import json, os, sys, donghaeng.toolkit.widgets.playground, donghaeng.toolkit.model_client, nbgrader, torch\n"
             "o = json.load(open(sys.prefix + '/share/jupyter/lab/settings/overrides.json'))\n"
             "print(o['@jupyterlab/translation-extension:plugin']['locale'], os.getuid(),\n"
             "      os.path.isdir('/usr/share/fonts/truetype/nanum'), torch.__version__)\n")
    run = docker_run(LEARNER_IMAGE, "python", "-c", check)
    assert run.returncode == 0, run.stderr
    locale, uid, fonts, torch_version = run.stdout.split()
    assert (locale, fonts, torch_version) == ("ko_KR", "True", "2.13.0+cpu") and uid != "0"
    models = docker_run(LEARNER_IMAGE, "find", "/", "-xdev", "-name", "*.gguf")
    assert models.stdout.strip() == ""  # learners use the hub's model service
    # nothing that grades a learner: no answer keys, sources with hidden tests, rubrics or calibration
    graders = docker_run(LEARNER_IMAGE, "find", "/", "-xdev", "(", "-name", "answer-keys", "-o", "-name", "graders",
                         "-o", "-name", "calibration", "-o", "-name", "rubrics", "-o", "-name", "*.ipynb", ")",
                         "-not", "-path", "/opt/donghaeng/venv/*")
    assert graders.stdout.strip() == "", graders.stdout
    hidden = docker_run(LEARNER_IMAGE, "grep", "-rlI", "MASTER_SCORES\\|answer-keys/", "/opt/donghaeng/src")
    assert hidden.stdout.strip() == "", hidden.stdout


def hub_settings(folder: Path) -> Path:
    """The project's settings file, listening on every address of the container, without the model
    service (the model file is not in the hub image: a site mounts it)."""
    text = (REPO_ROOT / "hub" / "lab.toml").read_text(encoding="utf-8")
    text, listen = re.subn(r'^ip = "127.0.0.1"$', 'ip = "0.0.0.0"', text, count=1, flags=re.M)
    text, model = re.subn(r"^(\[model\]\n(?:#.*\n)*)enabled = true$", r"\1enabled = false", text, flags=re.M)
    assert listen == model == 1, "hub/lab.toml changed shape: update this test"
    path = folder / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_hub_image_runs_the_lab_hub_in_korean(tmp_path):
    build("hub")
    settings = hub_settings(tmp_path)
    hub = docker.from_env().containers.run(
        HUB_IMAGE, detach=True, ports={"8000/tcp": ("127.0.0.1", None)}, labels={LABEL: "hub-test"},
        volumes={str(settings): {"bind": "/etc/donghaeng/lab.toml", "mode": "ro"}},
        environment={"DONGHAENG_SETTINGS": "/etc/donghaeng/lab.toml"})
    try:
        hub.reload()
        url = f"http://127.0.0.1:{hub.ports['8000/tcp'][0]['HostPort']}"
        deadline, answer = time.monotonic() + 180, None  # a bound on the wait, not a speed check
        while answer is None and time.monotonic() < deadline:
            hub.reload()
            assert hub.status == "running", hub.logs()[-3000:].decode(errors="replace")
            try:  # before the hub's route exists the proxy answers with an error page
                reply = httpx.get(f"{url}/hub/api", timeout=5)
                answer = reply.json() if reply.status_code == 200 else None
            except httpx.HTTPError:
                pass
            if answer is None:
                time.sleep(1)
        assert answer == {"version": jupyterhub.__version__}, hub.logs()[-3000:].decode(errors="replace")
        login = httpx.get(f"{url}/hub/login", timeout=10)
        assert login.status_code == 200 and "동행랩에 로그인해요" in login.text
        # the learner home runs in the image too: it sends a visitor through the hub's login
        home = httpx.get(f"{url}/services/home/", timeout=10)
        assert home.status_code == 302 and "client_id=service-home" in home.headers["location"]
    finally:
        hub.remove(force=True, v=True)


def test_rebuild_with_unchanged_inputs_is_skipped():
    build("grader")
    before = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", GRADER_IMAGE],
                            capture_output=True, text=True, check=True).stdout
    again = build("grader")
    assert "up to date, skipped" in again.stdout and "built" not in again.stdout
    after = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", GRADER_IMAGE],
                           capture_output=True, text=True, check=True).stdout
    assert before == after


def test_unknown_image_is_a_clear_error():
    result = subprocess.run([*DONGHAENG, "jupyter"], capture_output=True, text=True)
    assert result.returncode == 2 and "없는 이미지" in result.stderr and "learner" in result.stderr


def test_missing_tools_get_a_hint(monkeypatch: pytest.MonkeyPatch):
    no_docker = subprocess.run([*DONGHAENG, "grader"], capture_output=True, text=True,
                               env={**os.environ, "PATH": "/nonexistent"})
    assert no_docker.returncode == 1 and "apt-get install docker.io" in no_docker.stderr

    monkeypatch.setenv("PATH", "/nonexistent")  # a machine without debootstrap and without the cached tarball
    with Progress(disable=True) as progress, pytest.raises(ImageError, match="apt-get install debootstrap"):
        Builder(progress)._debootstrap()
