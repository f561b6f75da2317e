"""How the hub runs the exchange service: its account, private folder, service entry, tokens and roles."""

from __future__ import annotations

import os
from pathlib import Path

from donghaeng.common import safe_fs
from donghaeng.common.roster import ROLES
from donghaeng.hub.services import LOOPBACK, internal_ports, managed_service, service_token, service_url
from donghaeng.common.settings import Course, Settings
from donghaeng.services.exchange.config import CONFIG_ENV, ServiceConfig

SERVICE_NAME = "exchange"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
ACCOUNT = "donghaeng-exchange"  # not a roster login: those have no '-'
URL_ENV = "DONGHAENG_EXCHANGE_URL"
URL = f"/services/{SERVICE_NAME}/"
# What one submission may hold (besides [autograde] max_submission_mb for the total).
SUBMISSION_FILES = 500
RELEASE_FILES = 2000
RELEASE_MB = 200


def store_dir(settings: Settings) -> Path:
    return settings.paths.exchange


def token_dir(settings: Settings) -> Path:
    """Where each course's grader account reads its hub token (for ``nbgrader`` run from the CLI)."""
    return settings.paths.root / "exchange-tokens"


def grader_token_file(settings: Settings, grader: str) -> Path:
    return token_dir(settings) / grader


def loopback_url(port: int) -> str:
    return service_url(LOOPBACK, port, URL)


def grader_config(settings: Settings, course: Course) -> str:
    """Lines of the course's nbgrader_config.py: the grader's nbgrader runs reach the service on loopback
    with the grader's own hub token (the formgrader gets the same one from the hub)."""
    return (f"c.ServiceExchange.url = {loopback_url(internal_ports(settings)['exchange'])!r}\n"
            f"c.ServiceExchange.token_file = {str(grader_token_file(settings, course.grader_user))!r}\n")


def prepare(settings: Settings) -> None:
    """The service account, its private folder (0700, its own) and the graders' token files (root only)."""
    if os.geteuid() != 0:
        return
    from donghaeng.common.accounts import ensure_system_user

    lab = settings.lab
    entry = ensure_system_user(ACCOUNT, lab.learner_group, lab.home_root)
    settings.paths.root.mkdir(parents=True, exist_ok=True)
    store = store_dir(settings)
    store.mkdir(exist_ok=True)
    os.chown(store, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    store.chmod(0o700)
    tokens = token_dir(settings)
    tokens.mkdir(exist_ok=True)
    os.chown(tokens, 0, 0)
    tokens.chmod(0o755)
    for course in settings.courses:
        grader = ensure_system_user(course.grader_user, lab.learner_group, lab.home_root)
        # readable by that grader only, written atomically without following a link (root writes it)
        safe_fs.write_bytes(tokens, course.grader_user, service_token(settings, course.grader_user).encode(),
                            mode=0o400, owner=(grader.pw_uid, grader.pw_gid))


def service_config(settings: Settings) -> ServiceConfig:
    total = settings.autograde.max_submission_mb << 20
    return ServiceConfig(
        store=str(store_dir(settings)), courses=[course.id for course in settings.courses],
        submission={"max_files": SUBMISSION_FILES, "max_file_bytes": total, "max_total_bytes": total},
        release={"max_files": RELEASE_FILES, "max_file_bytes": RELEASE_MB << 20, "max_total_bytes": RELEASE_MB << 20},
    )


def service_spec(settings: Settings, port: int, host: str = LOOPBACK) -> dict:
    """The service entry: on *host*, where learners' servers reach it (it also answers on loopback for the
    graders' CLI runs; their tokens are their formgrader services' ``api_token``)."""
    user = {"user": ACCOUNT} if os.geteuid() == 0 else {}
    return managed_service(settings, SERVICE_NAME, port, "donghaeng.services.exchange", host=host, cwd=str(store_dir(settings)),
                           environment={CONFIG_ENV: service_config(settings).to_env()}, **user)


def learner_environment(port: int, host: str = LOOPBACK) -> dict[str, str]:
    """Learners' servers find the service here (their token's scope is in ``hubconfig.SERVER_TOKEN_SCOPES``)."""
    return {URL_ENV: service_url(host, port, URL)}


def roles(settings: Settings) -> list[dict]:
    return [
        {"name": "exchange-users", "description": "과제 받기·제출·피드백 (과제 교환 서비스)",
         "groups": list(ROLES), "scopes": [ACCESS_SCOPE]},
        {"name": "exchange-graders", "description": "Course graders release, collect and return feedback",
         "services": [course.grader_user for course in settings.courses], "scopes": [ACCESS_SCOPE]},
    ]
