"""The shape every lab service takes in JupyterHub's ``services`` list: one place for it."""

from __future__ import annotations

from .settings import Settings


def managed_service(settings: Settings, name: str, port: int | None, module: str, *,
                    environment: dict[str, str] | None = None, **extra: object) -> dict:
    """A hub-managed service: ``python -m <module>`` from the lab's environment on a loopback port
    (*port* None: a background service with no web pages).

    It finds the admin's settings file through ``DONGHAENG_SETTINGS``; *extra* adds JupyterHub's own
    service keys (``user``, ``cwd``, ``oauth_no_confirm``, ``display`` …).
    """
    env = {"LANG": "C.UTF-8"}
    if settings.source:
        env["DONGHAENG_SETTINGS"] = str(settings.source)
    return {
        "name": name,
        **({"url": f"http://127.0.0.1:{port}"} if port is not None else {}),
        "command": [str(settings.lab.user_prefix / "bin" / "python"), "-m", module],
        "display": False,
        "environment": {**env, **(environment or {})},
        **extra,
    }
