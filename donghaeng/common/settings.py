"""The admin's settings file (``lab.toml``): one schema, one loader.

Everything an admin may change lives in one TOML file.  The schema rejects unknown keys, so a typo
fails loudly at start-up instead of being silently ignored (the lesson of TLJH's config schema).
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SETTINGS = REPO_ROOT / "hub" / "lab.toml"
SETTINGS_ENV = "DONGHAENG_SETTINGS"
SPAWNER_ENV = "DONGHAENG_SPAWNER"  # `donghaeng up --spawner` overrides lab.spawner of the file
COURSE_ID = re.compile(r"^[a-z][a-z0-9]{1,15}(-[a-z0-9]{1,15}){0,2}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _refuse_moved(data: object, table: str, moved: dict[str, str]) -> object:
    """A clear message for keys that moved to another table (old lab.toml files), not "extra input"."""
    if isinstance(data, dict):
        found = [f"{key} -> [{moved[key].split('.')[0]}] {moved[key].split('.')[1]}" for key in data if key in moved]
        if found:
            raise ValueError(f"[{table}]의 이 키는 다른 표로 옮겨졌어요 / moved to another table: " + ", ".join(found))
    return data


class Autograde(_Strict):
    """How submissions are graded (``[autograde]``).

    Each course's ``nbgrader_config.py`` gets these as traitlets (:func:`donghaeng.grading.courses.autograde_config`),
    so ``donghaeng course autograde``, the grading pool and formgrader grade with the same sandbox and limits.
    """

    timeout: int = Field(default=30, ge=1, description="Seconds one cell may run during autograde.")
    workers: int = Field(default=4, ge=1, description="Submissions graded at once (at most twice the CPU count).")
    memory_mb: int = Field(default=2048, ge=256, description="Memory (address space) of one grading kernel, MiB.")
    processes: int = Field(default=64, ge=8, description="Processes and threads one grading kernel may run.")
    cpu_seconds: int = Field(default=600, ge=1, description="CPU seconds one grading kernel may use.")
    file_mb: int = Field(default=64, ge=1, description="Largest file a grading kernel may write, MiB.")
    open_files: int = Field(default=256, ge=32, description="Open files one grading kernel may hold.")
    output_lines: int = Field(default=1000, ge=10, description="Output lines kept per cell when graded.")
    output_chars: int = Field(default=100_000, ge=1000, description="Output characters kept per cell when graded.")
    sandbox: Literal["auto", "docker", "process"] = Field(
        default="auto",
        description="Where grading kernels run: 'docker' (a throw-away container of the grader image), "
                    "'process' (a namespaced, rlimited process) or 'auto' (docker when the engine answers "
                    "and the image exists).")
    max_submission_mb: int = Field(
        default=20, ge=1, description="Submissions larger than this (MiB, all files) are refused before grading.")


class ClassStart(_Strict):
    """Starting a class's servers, in every spawner mode (``[class_start]``)."""

    spawn_concurrency: int = Field(
        default=4, ge=1, description="Servers started at once; others wait in order on a '준비 중' page.")
    idle_timeout: int = Field(default=3600, ge=0, description="Seconds idle before a server is stopped (0: never).")
    prepare_minutes: int = Field(
        default=10, ge=0, description="Minutes before a class (schedule.toml `class_start`) that its learners' "
        "servers are started (0: never).")


class Course(_Strict):
    """One course (``[[courses]]``): an nbgrader course with its own grader account and gradebook."""

    id: str = Field(description="Short ASCII id used in paths, groups and nbgrader (e.g. 'ai-basics').")
    title: str = Field(description="Title learners see (Korean).")
    assignments: str | None = Field(
        default=None,
        description="Folder of nbgrader source assignments; default: assignments/<id> in this repo.",
    )

    @field_validator("id")
    @classmethod
    def _ascii_id(cls, value: str) -> str:
        if not COURSE_ID.match(value):
            raise ValueError("course id must be lower-case ASCII like 'ai-basics' (2-16 chars per part)")
        return value

    @property
    def grader_user(self) -> str:
        """System account (and hub service name) that owns this course's nbgrader directory."""
        return f"grader-{self.id}"


class Https(_Strict):
    """TLS on the public proxy (``[lab.https]``, docs/admin-guide.md "HTTPS").

    configurable-http-proxy serves the certificate itself and answers plain HTTP with a redirect.
    """

    enabled: bool = Field(default=False, description="Serve HTTPS (cert and key required).")
    cert: Path | None = Field(
        default=None, description="PEM certificate with its chain (certbot: /etc/letsencrypt/live/<name>/fullchain.pem).")
    key: Path | None = Field(
        default=None, description="PEM private key of that certificate (certbot: …/privkey.pem), root-readable only.")
    port: int = Field(default=443, ge=1, le=65535, description="Port the lab serves HTTPS on.")
    http_port: int = Field(
        default=80, ge=0, le=65535, description="Port whose plain HTTP requests are redirected to HTTPS (0: none).")
    domain: str | None = Field(
        default=None, description="Name in the certificate people type (e.g. 'lab.example.kr'); default: lab.ip.")
    hsts_max_age: int = Field(
        default=15_552_000, ge=0, description="Seconds browsers remember to use HTTPS only (Strict-Transport-Security).")

    @model_validator(mode="after")
    def _files_and_ports(self) -> "Https":
        if not self.enabled:
            return self
        for what, path in (("cert", self.cert), ("key", self.key)):
            if path is None:
                raise ValueError(f"https를 켜려면 {what} 파일 경로가 있어야 해요 / https is on but {what} is not set")
            if not path.is_absolute():
                raise ValueError(f"https {what}는 절대 경로로 적어 주세요 / https {what} must be an absolute path: {path}")
            try:
                missing = not path.is_file()
            except PermissionError:  # the lab's services load settings as unprivileged accounts; root checks
                missing = False
            if missing:
                raise ValueError(f"https {what} 파일이 없어요 / https {what} file not found: {path}")
        if self.http_port == self.port:
            raise ValueError(f"http_port와 port가 같아요({self.port}) / http_port must differ from port")
        return self


class Lab(_Strict):
    """The lab itself (``[lab]``): where it keeps its state, where it listens, how servers start."""

    data_dir: Path = Field(default=Path("/srv/donghaeng"), description="Where the lab keeps its state (hub DB, courses, exchange, certificates).")
    ip: str = Field(default="127.0.0.1", description="Address the public proxy listens on (0.0.0.0: every address).")
    port: int = Field(default=8000, description="Public HTTP port; with https on, only the base of the hub's "
                                                "internal loopback ports (port+1 …).")
    https: Https = Https()
    spawner: Literal["local", "docker", "swarm"] = Field(
        default="local", description="'local': a system account per learner; 'docker'/'swarm': a container per "
                                     "learner ([containers]).")
    default_language: Literal["ko", "en"] = Field(default="ko", description="First language of the pages and JupyterLab.")
    user_prefix: Path = Field(
        default=Path("/opt/donghaeng/venv"),
        description="Python environment learners' servers run from; must be readable by every account.",
    )
    home_root: Path = Field(default=Path("/home"), description="Where learners' home folders are made (local spawner).")
    learner_group: str = Field(default="donghaeng", description="Unix group of the lab's accounts.")
    min_password_length: int = Field(default=8, ge=6, description="Shortest password a person may choose.")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: object) -> object:
        return _refuse_moved(data, "lab", {f"autograde_{k}": f"autograde.{k}" for k in Autograde.model_fields})

    @property
    def public_url(self) -> str:
        """Address people open: https://domain[:port] with https on, else http://ip:port
        (loopback when the lab listens on every address)."""
        host = "127.0.0.1" if self.ip in ("0.0.0.0", "::") else self.ip
        if not self.https.enabled:
            return f"http://{host}:{self.port}"
        port = "" if self.https.port == 443 else f":{self.https.port}"
        return f"https://{self.https.domain or host}{port}"


PACKAGED_MODEL = Path("/opt/donghaeng/models/gemma3-270m-q4_k_m.gguf")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class ModelEntry(_Strict):
    """One language model in the shared model service's catalogue (``[[models]]``)."""

    name: str = Field(description="Name clients send as 'model' (e.g. 'gemma3-270m').")
    engine: Literal["llama-server", "transformers", "openai"] = Field(
        default="llama-server",
        description="'llama-server': the service runs llama.cpp on a GGUF file; "
                    "'transformers': the service runs transformers on a Hugging Face model folder; "
                    "'openai': proxy an external OpenAI-compatible server (vLLM, Ollama).")
    path: Path | None = Field(
        default=None, description="GGUF file (engine = llama-server) or Hugging Face model folder (transformers).")
    url: str | None = Field(default=None, description="Base URL ending in /v1 (engine = openai).")
    upstream_model: str | None = Field(default=None, description="Model name the upstream expects; default: name.")
    api_key: str | None = Field(default=None, description="Bearer key for the upstream (engine = openai).")
    context_length: int = Field(default=8192, ge=256, description="Tokens one request may use (prompt + answer).")
    completion_only: bool = Field(
        default=True, description="Base model without a chat template: /v1/chat/completions answers a Korean error. "
                                  "false: a chat/instruct model, and the notebooks' playgrounds offer a chat mode.")
    parallel: int = Field(default=10, ge=1, le=64, description="Requests the engine runs at once (llama-server slots).")
    threads: int | None = Field(default=None, ge=1, description="CPU threads for the engine; default: all cores.")

    @field_validator("name")
    @classmethod
    def _model_name(cls, value: str) -> str:
        if not MODEL_NAME.match(value):
            raise ValueError("model name must be ASCII letters, digits, '.', '_', ':' or '-'")
        return value

    @model_validator(mode="after")
    def _engine_target(self) -> "ModelEntry":
        if self.engine == "llama-server" and self.path is None:
            raise ValueError(f"model '{self.name}': engine 'llama-server' needs path (a GGUF file)")
        if self.engine == "openai" and not self.url:
            raise ValueError(f"model '{self.name}': engine 'openai' needs url (…/v1)")
        if self.engine == "llama-server" and self.path.is_dir():
            raise ValueError(f"model '{self.name}': {self.path} is a folder; llama-server needs a .gguf file "
                             "(for a Hugging Face model folder use engine = \"transformers\")")
        if self.engine == "transformers":
            problem = hf_folder_problem(self.path)
            if problem:
                raise ValueError(f"model '{self.name}': engine 'transformers' needs path to a Hugging Face model "
                                 f"folder (config.json, weights, tokenizer): {problem}")
        return self


def hf_folder_problem(path: Path | None) -> str | None:
    """What is wrong with a Hugging Face model folder, or None.  A folder that does not exist yet
    is accepted (the service reports it as missing, like a missing GGUF file)."""
    if path is None:
        return "path is missing"
    try:
        if path.suffix == ".gguf" or path.is_file():
            return f"{path} is a file (for a .gguf file use engine = \"llama-server\")"
        names = {p.name for p in path.iterdir()}
    except OSError:  # not there yet, or not readable by this account: the service reports it
        return None
    lacking = [what for what, ok in (
        ("config.json", "config.json" in names),
        ("weights (*.safetensors or pytorch_model*.bin)",
         any(n.endswith(".safetensors") or (n.startswith("pytorch_model") and n.endswith(".bin")) for n in names)),
        ("tokenizer (tokenizer.json or tokenizer.model)", bool(names & {"tokenizer.json", "tokenizer.model"})),
    ) if not ok]
    return f"{path} has no " + ", no ".join(lacking) if lacking else None


class ModelService(_Strict):
    """The shared model service (``[model]``): limits that keep one class fair."""

    enabled: bool = Field(default=True, description="Run the shared model service.")
    account: str = Field(default="donghaeng-model", description="Unprivileged system account the service runs as.")
    engine_binary: Path = Field(default=Path("/opt/donghaeng/bin/llama-server"),
                                description="llama.cpp server built by ./lab (engine = llama-server).")
    per_user_concurrency: int = Field(default=2, ge=1, description="Requests one person may have running or waiting.")
    tokens_per_minute: int = Field(default=4000, ge=1, description="Generated tokens one person may get per minute.")
    queue_size: int = Field(default=40, ge=0, description="Requests that may wait for a free slot (all models).")
    priority_groups: list[str] = Field(
        default_factory=lambda: ["trainer", "admin"],
        description="Hub groups whose requests go ahead of the queue (and may use priority_reserve extra places).")
    priority_reserve: int = Field(default=5, ge=0, description="Extra queue places only priority_groups may take.")
    request_timeout: float = Field(default=120.0, gt=0, description="Seconds a request may take, waiting included.")
    max_tokens: int = Field(default=2048, ge=1, description="Largest max_tokens a request may ask for.")
    default_max_tokens: int = Field(default=256, ge=1, description="max_tokens when a request gives none.")
    max_request_bytes: int = Field(default=1_000_000, ge=1024, description="Largest request body.")
    log_prompts: bool = Field(
        default=False, description="Also write prompts to the usage log, after masking personal data.")


class Certification(_Strict):
    """Certificates, the TTT gate and the public verification service (``[certification]``)."""

    enabled: bool = Field(default=True, description="Issue certificates and serve their public verification page.")
    policy: Path | None = Field(
        default=None, description="Certification policy TOML; default: graders/certification.toml in this repo.")
    public_url: str | None = Field(
        default=None, description="Address people use to reach the lab (printed as QR codes); default: lab.public_url.")
    issuer_name: str = Field(default="동행랩", description="Issuer printed on certificates and credentials.")
    account: str = Field(default="donghaeng-cert", description="Unprivileged account the verification service runs as.")


class Dashboard(_Strict):
    """The trainer dashboard service (``[dashboard]``, docs/dashboard.md)."""

    enabled: bool = Field(default=True, description="Run the trainer dashboard.")
    inactive_days: int = Field(default=7, ge=1, description="Days without hub activity before a learner is at risk.")
    failing_below: float = Field(default=60, ge=0, le=100,
                                 description="Score (percent) under which a graded assignment puts a learner at risk.")


class Home(_Strict):
    """The learner home service (``[home]``): courses, modules, one-click start, help requests.

    Off, learners keep nbgrader's own (English) assignment panels instead.
    """

    enabled: bool = Field(default=True, description="Run the learner home (where people land after login).")


class LearnerUI(_Strict):
    """What learners' JupyterLab shows (``[learner_ui]``); trainers and admins always get everything."""

    terminal: bool = Field(default=False, description="Learners may open a terminal.")
    news: bool = Field(default=False, description="JupyterLab's news and update pop-ups for learners.")
    focused: bool = Field(
        default=True, description="One notebook at a time, without status bar, kernel chooser or debugger.")
    file_browser: bool | None = Field(
        default=None, description="File browser in the left sidebar; default: hidden when [home] is on.")


class RoleLimits(_Strict):
    """CPU and memory of one learner container; per role, from ``[containers.limits.<role>]``."""

    cpu: float = Field(default=1.0, gt=0, description="CPU cores (may be fractional).")
    memory: str = Field(default="1G", pattern=r"^[0-9]+[KMG]?$", description="Memory, e.g. '1G' or '768M'.")


def _default_limits() -> dict[str, RoleLimits]:
    return {"learner": RoleLimits(), "trainer": RoleLimits(cpu=2.0, memory="2G"),
            "admin": RoleLimits(cpu=2.0, memory="2G")}


class Containers(_Strict):
    """Per-learner containers (``[containers]``), used when ``lab.spawner`` is 'docker' or 'swarm'."""

    image: str = Field(default="", description="Learner image; default: what `donghaeng images build learner` makes.")
    limits: dict[Literal["learner", "trainer", "admin"], RoleLimits] = Field(
        default_factory=_default_limits, description="CPU and memory per role.")
    network: str = Field(default="donghaeng-learners", description="Docker network of the learners' containers.")
    subnet: str = Field(default="172.30.0.0/24", description="Subnet of that network; the hub listens on its .1.")
    allow_internet: bool = Field(default=False, description="Containers may reach the internet (else: the hub only).")
    volume_name: str = Field(default="donghaeng-home-{username}", description="Named volume for each home.")
    pids_limit: int = Field(default=512, ge=32, description="Processes one container may run (fork bombs).")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: object) -> object:
        return _refuse_moved(data, "containers", {k: f"class_start.{k}" for k in ClassStart.model_fields})


POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg2")


def _postgres_url_problem(url: str, *, template: bool) -> str | None:
    """Why *url* is not a usable PostgreSQL URL for ``[database]``, in Korean and English, or None."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        return f"postgresql:// 로 시작하는 주소여야 해요 / must start with postgresql://: {url}"
    if parts.password is not None:
        return ("비밀번호는 주소에 적지 말고 password_file(root만 읽는 pgpass 파일)에 적어 주세요 / "
                "put the password in password_file (a root-only pgpass file), not in the URL")
    name = parts.path.lstrip("/")
    if not name or "/" in name:
        return f"주소 끝에 데이터베이스 이름이 하나 있어야 해요 / the URL needs one database name: {url}"
    if template and (url.count("{course}") != 1 or "{course}" not in name):
        return ("gradebook_url의 데이터베이스 이름에 {course}가 한 번 들어가야 해요(과정마다 데이터베이스 하나) / "
                "the database name must contain {course} once (one database per course)")
    if template and parts.username:
        return ("gradebook_url에는 사용자 이름을 적지 않아요: 과정마다 grader-<과정> 역할을 만들어요 / "
                "leave the user out: each course gets its own role grader-<course>")
    return None


class Database(_Strict):
    """PostgreSQL for the hub and the gradebooks (``[database]``, docs/admin-guide.md "PostgreSQL").

    Left out, the hub and each course keep SQLite files.  nbgrader's FAQ: SQLite is not safe when
    several people grade at once.
    """

    hub_url: str | None = Field(
        default=None, description="The hub's database, e.g. 'postgresql://donghaeng_hub@127.0.0.1:5432/donghaeng_hub'.")
    gradebook_url: str | None = Field(
        default=None, description="One database per course, {course} replaced by the course id, e.g. "
                                  "'postgresql://127.0.0.1:5432/donghaeng_{course}'; each course's role is grader-<id>.")
    admin_url: str | None = Field(
        default=None, description="Role with CREATEROLE and CREATEDB that `donghaeng up` uses to make each course's "
                                  "role and database; default: hub_url.")
    password_file: Path | None = Field(
        default=None, description="Root-only (0600) pgpass file with the passwords of hub_url's and admin_url's roles; "
                                  "default: libpq's own (~/.pgpass, PGPASSFILE) or peer authentication.")

    @model_validator(mode="after")
    def _urls(self) -> "Database":
        for key, template in (("hub_url", False), ("gradebook_url", True), ("admin_url", False)):
            url = getattr(self, key)
            if url is not None and (problem := _postgres_url_problem(url, template=template)):
                raise ValueError(f"{key}: {problem}")
        if self.gradebook_url and not (self.admin_url or self.hub_url):
            raise ValueError("gradebook_url을 쓰려면 admin_url(또는 hub_url)이 있어야 해요: 과정마다 역할과 "
                             "데이터베이스를 만들 계정이에요 / gradebook_url needs admin_url or hub_url")
        if self.password_file is not None:
            if not self.password_file.is_absolute():
                raise ValueError(f"password_file은 절대 경로로 적어 주세요 / must be absolute: {self.password_file}")
            try:
                mode = self.password_file.stat().st_mode
            except PermissionError:  # the lab's services load settings as unprivileged accounts; root checks
                mode = 0
            except FileNotFoundError:
                raise ValueError(f"password_file이 없어요 / not found: {self.password_file}") from None
            if mode & 0o077:
                raise ValueError(f"password_file을 다른 계정도 읽을 수 있어요. `chmod 600 {self.password_file}`로 "
                                 "바꿔 주세요 / readable by others (libpq ignores such a file)")
        return self


def _default_models() -> list[ModelEntry]:
    return [ModelEntry(name="gemma3-270m", path=PACKAGED_MODEL)]


class Settings(_Strict):
    lab: Lab = Lab()
    courses: list[Course] = Field(default_factory=list)
    model: ModelService = ModelService()
    models: list[ModelEntry] = Field(default_factory=_default_models)
    containers: Containers = Containers()
    autograde: Autograde = Autograde()
    class_start: ClassStart = ClassStart()
    certification: Certification = Certification()
    home: Home = Home()
    learner_ui: LearnerUI = LearnerUI()
    dashboard: Dashboard = Dashboard()
    database: Database = Database()
    source: Path | None = None

    @field_validator("courses")
    @classmethod
    def _unique_courses(cls, courses: list[Course]) -> list[Course]:
        ids = [c.id for c in courses]
        if len(ids) != len(set(ids)):
            raise ValueError(f"course ids must be unique: {ids}")
        return courses

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[ModelEntry]) -> list[ModelEntry]:
        names = [m.name for m in models]
        if not names:
            raise ValueError("list at least one model (the first is the default)")
        if len(names) != len(set(names)):
            raise ValueError(f"model names must be unique: {names}")
        return models

    @property
    def hub_api_url(self) -> str:
        """The hub's REST API as the lab's own tools reach it (through the proxy, in every spawner mode)."""
        return f"{self.lab.public_url}/hub/api"

    def course(self, course_id: str) -> Course:
        for course in self.courses:
            if course.id == course_id:
                return course
        known = ", ".join(c.id for c in self.courses) or "(없음)"
        raise KeyError(f"'{course_id}' 과정이 설정에 없어요. 있는 과정: {known}")

    @cached_property
    def paths(self) -> "LabPaths":
        return LabPaths(self.lab.data_dir)

    def assignments_dir(self, course: Course) -> Path:
        if course.assignments:
            base = self.source.parent if self.source else REPO_ROOT
            return (base / course.assignments).resolve()
        return REPO_ROOT / "assignments" / course.id


class LabPaths:
    """Where the lab keeps its state; derived from ``lab.data_dir`` only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"  # hub db, cookie secret, cohort db: root only
        self.hub_db = self.state / "jupyterhub.sqlite"
        self.cohort_db = self.state / "cohort.sqlite"
        self.cookie_secret = self.state / "jupyterhub_cookie_secret"
        self.passwords = self.state / "initial-passwords"
        self.courses = root / "courses"
        self.exchange = root / "exchange-store"  # the exchange service's own (donghaeng.services.exchange), 0700
        self.solutions = root / "solutions"  # released self-check solutions, readable by learners
        self.jupyter_config = root / "jupyter-config"
        self.learner_config = root / "jupyter-config-learner"

    def course_dir(self, course_id: str) -> Path:
        return self.courses / course_id


class SettingsError(Exception):
    """The settings file is missing or invalid; the message says where and why."""


def load_settings(path: Path | str | None = None) -> Settings:
    """Load ``lab.toml`` from *path*, ``$DONGHAENG_SETTINGS`` or the repo default."""
    path = Path(path or os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SettingsError(f"설정 파일이 없어요 / settings file not found: {path}") from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"설정 파일 문법 오류 / invalid TOML in {path}: {e}") from e
    if os.environ.get(SPAWNER_ENV):
        data.setdefault("lab", {})["spawner"] = os.environ[SPAWNER_ENV]
    try:
        return Settings(**data, source=path.resolve())
    except ValidationError as e:
        lines = [f"설정 파일에 잘못된 값이 있어요 / invalid settings in {path}:"]
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  - {where}: {err['msg']}")
        raise SettingsError("\n".join(lines)) from e
