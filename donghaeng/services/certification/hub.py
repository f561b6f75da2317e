"""How the hub runs certification: the public verification service, the gate's token and their roles."""

from __future__ import annotations

import os

from donghaeng.hub.services import managed_service
from donghaeng.common.settings import Settings

SERVICE_NAME = "certificates"


def prepare(settings: Settings) -> None:
    """Signing key, gate token, service account and the public folder (root only; idempotent)."""
    if os.geteuid() != 0:
        return
    from donghaeng.common.accounts import ensure_system_user
    from donghaeng.deploy.checkout import add_to_services
    from donghaeng.services.certification.credential import ensure_key, public_dir, publish_status_list, status_list_file
    from donghaeng.services.certification.gate import ensure_token
    from donghaeng.services.certification.store import Store, now

    lab = settings.lab
    ensure_system_user(settings.certification.account, lab.learner_group, lab.home_root)
    add_to_services(settings.certification.account)  # it reads lab.toml in the private checkout
    settings.paths.root.mkdir(parents=True, exist_ok=True)
    key = ensure_key(settings)
    ensure_token(settings)
    for folder in (public_dir(settings).parent, public_dir(settings)):
        folder.chmod(0o755)
    if not status_list_file(settings).exists():
        publish_status_list(settings, key, Store.of(settings).revoked_indices(), now())


def service_specs(settings: Settings, port: int) -> list[dict]:
    """The public verification service (no login) and the gate's API-only service (a token, no process)."""
    from donghaeng.services.certification.credential import public_dir
    from donghaeng.services.certification.gate import GATE_SERVICE, ensure_token

    return [
        managed_service(settings, SERVICE_NAME, port, "donghaeng.services.certification.service",
                        user=settings.certification.account, cwd=str(public_dir(settings)),
                        environment={"MPLCONFIGDIR": "/tmp"}),
        {"name": GATE_SERVICE, "api_token": ensure_token(settings), "display": False},
    ]


def roles(settings: Settings) -> list[dict]:
    """The gate may manage only the learners' course groups (``nbgrader-<course>``), nothing else."""
    if not settings.certification.enabled:
        return []
    from donghaeng.services.certification.gate import GATE_SERVICE

    groups = [f"nbgrader-{course.id}" for course in settings.courses]
    return [{
        "name": "certification-gate",
        "description": "수료 단계가 여는 과정(nbgrader-<과정> 그룹)에 학습자를 넣고 빼요",
        "services": [GATE_SERVICE],
        "scopes": ["read:users:name", *(f"groups!group={g}" for g in groups),
                   *(f"admin:groups!group={g}" for g in groups)],
    }]
