"""How the hub runs the learner home: its service entry, roles and what learners' servers need."""

from __future__ import annotations

from donghaeng.common.roster import ROLES
from donghaeng.hub.services import LOOPBACK, managed_service, service_url
from donghaeng.common.settings import Settings

SERVICE_NAME = "home"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
URL = f"/services/{SERVICE_NAME}/"


def service_spec(settings: Settings, port: int, host: str = LOOPBACK) -> dict:
    """Runs as the hub's user (root): it reads learners' folders and the course gradebooks."""
    return managed_service(settings, SERVICE_NAME, port, "donghaeng.services.home", host=host, oauth_no_confirm=True)


def learner_environment(port: int, host: str = LOOPBACK) -> dict[str, str]:
    """Learners' servers call the home's API on *host* (help requests, deadlines)."""
    return {"DONGHAENG_HOME_URL": service_url(host, port, URL)}


def roles(settings: Settings) -> list[dict]:
    if not settings.home.enabled:
        return []
    return [
        {"name": "home-users", "description": "학습 홈 사용", "groups": list(ROLES), "scopes": [ACCESS_SCOPE]},
        {"name": "home-service", "description": "The learner home reads people's groups and server state",
         # admin:server_state: the last memory kill a container spawner keeps there (home/notices.py)
         "services": [SERVICE_NAME],
         "scopes": ["read:users:name", "read:users:groups", "read:servers", "admin:server_state"]},
    ]
