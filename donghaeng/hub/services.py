"""The shape every lab service takes in JupyterHub's ``services`` list: one place for it."""

from __future__ import annotations

import os
import secrets

from donghaeng.common.settings import Settings

LOOPBACK = "127.0.0.1"


def internal_ports(settings: Settings) -> dict[str, int]:
    """Loopback ports next to the public one: hub API, proxy API, the lab's services, one per course grader."""
    port = settings.lab.port
    ports = {"hub": port + 1, "proxy_api": port + 2, "model": port + 3,
             "dashboard": port + 4, "home": port + 5, "certificates": port + 6, "pool": port + 7,
             "exchange": port + 8}
    ports.update({course.id: port + 10 + i for i, course in enumerate(settings.courses)})
    return ports


def service_url(host: str, port: int, path: str = "") -> str:
    return f"http://{host}:{port}{path}"


def managed_service(settings: Settings, name: str, port: int | None, module: str, *, host: str = LOOPBACK,
                    environment: dict[str, str] | None = None, **extra: object) -> dict:
    """A hub-managed service: ``python -m <module>`` from the lab's environment on *host*:*port* (loopback
    unless learners' containers call it; *port* None: a background service with no web pages).

    It finds the admin's settings file through ``DONGHAENG_SETTINGS``; *extra* adds JupyterHub's own
    service keys (``user``, ``cwd``, ``oauth_no_confirm``, ``display`` …).
    """
    env = {"LANG": "C.UTF-8"}
    if settings.source:
        env["DONGHAENG_SETTINGS"] = str(settings.source)
    return {
        "name": name,
        **({"url": service_url(host, port)} if port is not None else {}),
        "command": [str(settings.lab.user_prefix / "bin" / "python"), "-m", module],
        "display": False,
        "environment": {**env, **(environment or {})},
        **extra,
    }


def service_token(settings: Settings, name: str) -> str:
    """The hub API token of service *name*: a root-only file ``<state>/<name>-token``, made once."""
    path = settings.paths.state / f"{name}-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made by another process just now
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return path.read_text().strip()
