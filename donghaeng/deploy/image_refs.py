"""The lab's image names and two questions to the Docker CLI: is the daemon up, and which inputs built an image.

Standard library only: the root-side grading helper (:mod:`donghaeng.grading.sandbox_docker_helper`) imports
this for every grading kernel it starts, and must start fast.  :mod:`donghaeng.deploy.images` builds the images.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def project_metadata() -> dict:
    """The project's metadata: versions and pins (also copied into the images, which have no dist-info)."""
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


TAG = project_metadata()["version"]
DEBIAN_IMAGE = "donghaeng/debian:bookworm"
BASE_IMAGE = f"donghaeng/base:{TAG}"
LEARNER_IMAGE = f"donghaeng/learner:{TAG}"
GRADER_IMAGE = f"donghaeng/grader:{TAG}"
HUB_IMAGE = f"donghaeng/hub:{TAG}"
IMAGE_PREFIX = "/opt/donghaeng/venv"  # the Python environment inside every image (same path as on the host)
IMAGE_PYTHON = f"{IMAGE_PREFIX}/bin/python"
LEARNER_UID = 1000  # "jovyan", DockerSpawner's convention; nbgrader then uses JUPYTERHUB_USER
GRADER_UID = 1000  # "sandbox", who runs grading kernels in the grader image
INPUTS_LABEL = "org.donghaeng.inputs"


def docker_cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, **kw)


def docker_ready() -> bool:
    """True when a Docker client is installed and its daemon answers."""
    if not shutil.which("docker"):
        return False
    try:
        return docker_cli("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def image_label(tag: str) -> str | None:
    """The inputs digest of image *tag*, or None when the image does not exist."""
    result = docker_cli("image", "inspect", "--format", f'{{{{ index .Config.Labels "{INPUTS_LABEL}" }}}}', tag,
                     check=False)
    return result.stdout.strip() if result.returncode == 0 else None
