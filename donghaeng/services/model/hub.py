"""How the hub runs the model service: its account, folder, service entry and roles."""

from __future__ import annotations

import os
from pathlib import Path

from donghaeng.toolkit.model_client import MODEL_KIND_ENV
from donghaeng.hub.services import LOOPBACK, managed_service, service_url
from donghaeng.common.settings import Settings
from donghaeng.services.model.config import ServiceConfig

SERVICE_NAME = "model"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
#: Hub groups whose members may use the service (the roster's roles).
USER_GROUPS = ("learner", "trainer", "admin")


def state_dir(settings: Settings) -> Path:
    return settings.paths.root / "model"


def prepare(settings: Settings) -> None:
    """Create the service account and its private folder (root only; idempotent)."""
    if os.geteuid() != 0:
        return
    from donghaeng.common.accounts import ensure_system_user

    lab = settings.lab
    entry = ensure_system_user(settings.model.account, lab.learner_group, lab.home_root)
    root = state_dir(settings)
    settings.paths.root.mkdir(parents=True, exist_ok=True)
    for folder in (root, root / "run"):
        folder.mkdir(exist_ok=True)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        folder.chmod(0o700)


def service_config(settings: Settings, port: int) -> ServiceConfig:
    return ServiceConfig(service=settings.model, models=list(settings.models), state_dir=state_dir(settings),
                         ip="127.0.0.1", port=port)


def service_spec(settings: Settings, port: int, host: str = LOOPBACK) -> dict:
    """The managed JupyterHub service entry (runs as the unprivileged service account)."""
    return managed_service(settings, SERVICE_NAME, port, "donghaeng.services.model", host=host,
                           user=settings.model.account, cwd=str(state_dir(settings)),
                           environment={"DONGHAENG_MODEL_SERVICE": service_config(settings, port).to_env()})


def learner_environment(settings: Settings, port: int, host: str = LOOPBACK) -> dict[str, str]:
    """What learners' servers need to find the service (read by ``donghaeng.toolkit.model_client``)."""
    default = settings.models[0]
    return {
        "DONGHAENG_MODEL_URL": service_url(host, port, f"/services/{SERVICE_NAME}/v1"),
        "DONGHAENG_MODEL_NAME": default.name,
        "DONGHAENG_MODEL_CONTEXT": str(default.context_length),
        # base (completion) or chat model: which playground modes the notebooks offer (no request needed)
        MODEL_KIND_ENV: "base" if default.completion_only else "chat",
    }


def roles(settings: Settings) -> list[dict]:
    """Who may use the service, and what the service may read about them (their groups)."""
    if not settings.model.enabled:
        return []
    return [
        {"name": "model-users", "description": "공유 언어 모델 서비스 사용",
         "groups": list(USER_GROUPS), "scopes": [ACCESS_SCOPE]},
        {"name": "model-service", "description": "The model service reads people's groups (priority, usage by course)",
         "services": [SERVICE_NAME], "scopes": ["read:users:name", "read:users:groups"]},
    ]
