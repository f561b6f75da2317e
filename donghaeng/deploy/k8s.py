"""Kubernetes: a Zero to JupyterHub (z2jh) ``values.yaml`` generated from the same ``lab.toml``.

The chart runs JupyterHub with KubeSpawner; this module only translates our settings (images, limits
per role, idle culling, class-start placeholders, the nbgrader exchange service's address, our authenticator)
into the chart's values, and checks them against the chart's own schema (vendored in
``images/k8s/``; see its README for the version).  Helm validates the user's values merged over the
chart's defaults, so :func:`validate` does the same.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from donghaeng.common import database
from donghaeng.hub.queue import cull_every
from donghaeng.services.exchange.hub import URL_ENV
from donghaeng.hub.roles import hub_roles
from donghaeng.common.settings import REPO_ROOT, RoleLimits, Settings

CHART_DIR = REPO_ROOT / "images" / "k8s"
SCHEMA = CHART_DIR / "values.schema.yaml"
TLS_SECRET = "donghaeng-tls"  # kubectl create secret tls donghaeng-tls --cert <fullchain> --key <privkey>
CHART_DEFAULTS = CHART_DIR / "values.yaml"
HOME = "/home/jovyan"
#: Learners' pods reach the lab's exchange service through the chart's proxy (no shared volume).
EXCHANGE_URL = "http://proxy-public/services/exchange/"
HUB_STATE = "/srv/jupyterhub"  # the chart's hub volume (hub.db.type = sqlite-pvc)

# Read by the hub pod (hub.extraConfig): per-role limits via KubeSpawner's pre_spawn_hook.
EXTRA_CONFIG = """\
from donghaeng.deploy.k8s import role_limits_hook
c.KubeSpawner.pre_spawn_hook = role_limits_hook(get_config("custom.donghaeng.limits"))
"""


def _image(ref: str) -> dict[str, str]:
    name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    return {"name": name, "tag": tag}


def _k8s_memory(memory: str) -> str:
    return memory + "i" if memory[-1] in "KMG" else memory  # Docker's 1G is Kubernetes' 1Gi


def values(settings: Settings, placeholders: int = 0) -> dict[str, Any]:
    """The chart's values for this lab; *placeholders* keeps that many learner-sized nodes' worth free."""
    from donghaeng.hub.containers import learner_image
    from donghaeng.deploy.image_refs import HUB_IMAGE, IMAGE_PREFIX

    conf, lab = settings.containers, settings.lab
    idle = settings.class_start.idle_timeout
    learner = conf.limits.get("learner", RoleLimits())
    # roles about the VM's hub services (graders, model, culler) are left out: the chart runs its own culler
    roles = {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in hub_roles(settings)
             if "services" not in r and not any("service=" in scope for scope in r["scopes"])}
    chart: dict[str, Any] = {
        "hub": {
            "image": _image(HUB_IMAGE),
            "config": {
                "JupyterHub": {"authenticator_class": "donghaeng.hub.auth.RosterAuthenticator"},
                "RosterAuthenticator": {
                    "cohort_db": f"{HUB_STATE}/cohort.sqlite",
                    "min_password_length": lab.min_password_length,
                    "course_ids": [course.id for course in settings.courses],
                },
                "Authenticator": {"manage_groups": True, "refresh_pre_spawn": True, "any_allow_config": True},
            },
            "loadRoles": roles,
            # JupyterHub's own throttle; KubeSpawner pods start in parallel on many nodes
            "concurrentSpawnLimit": max(settings.class_start.spawn_concurrency * 10, 30),
            "extraConfig": {"donghaeng-limits.py": EXTRA_CONFIG},
        },
        "singleuser": {
            "image": _image(learner_image(settings)),
            "cmd": f"{IMAGE_PREFIX}/bin/jupyterhub-singleuser",
            "defaultUrl": "/lab",
            "uid": 1000,
            "fsGid": 100,
            "startTimeout": 600,
            "cpu": {"limit": learner.cpu, "guarantee": round(learner.cpu / 4, 2)},
            "memory": {"limit": _k8s_memory(learner.memory), "guarantee": _k8s_memory(learner.memory)},
            "storage": {
                "type": "dynamic",
                "capacity": "2Gi",
                "homeMountPath": HOME,
            },
            "extraEnv": {"LANG": "C.UTF-8", URL_ENV: EXCHANGE_URL},
            "networkPolicy": {
                "enabled": True,
                "egressAllowRules": {"nonPrivateIPs": conf.allow_internet, "privateIPs": False,
                                     "dnsPortsPrivateIPs": True},
            },
        },
        "scheduling": {
            "userScheduler": {"enabled": True},  # packs learners onto few nodes, so idle ones scale down
            "podPriority": {"enabled": True},
            "userPlaceholder": {"enabled": placeholders > 0, "replicas": placeholders},
        },
        "cull": {"enabled": idle > 0, "timeout": idle or 3600, "every": cull_every(idle)},
        "custom": {"donghaeng": {"limits": {role: lim.model_dump() for role, lim in conf.limits.items()}}},
    }
    if settings.database.hub_url:  # the password goes in with `--set hub.db.password=…`, never in this file
        chart["hub"]["db"] = {"type": "postgres", "url": database.engine_url(settings.database.hub_url, None)}
    if settings.lab.https.enabled:
        # from a Kubernetes TLS secret of the admin's certificate (`kubectl create secret tls donghaeng-tls
        # --cert … --key …`): no key ever sits in values.yaml
        chart["proxy"] = {"https": {"enabled": True, "type": "secret",
                                    "hosts": [settings.lab.https.domain] if settings.lab.https.domain else [],
                                    "secret": {"name": TLS_SECRET, "key": "tls.key", "crt": "tls.crt"}}}
    return chart


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def validate(generated: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless *generated*, over the chart's defaults, fits the schema."""
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    defaults = yaml.safe_load(CHART_DEFAULTS.read_text(encoding="utf-8"))
    jsonschema.validate(_merge(defaults, generated), schema)


def dump(generated: dict[str, Any]) -> str:
    header = ("# Zero to JupyterHub values generated by `donghaeng k8s values` from lab.toml; edit lab.toml.\n"
              "# helm upgrade --install lab jupyterhub/jupyterhub --values values.yaml (docs/scale-out.md)\n")
    return header + yaml.safe_dump(generated, allow_unicode=True, sort_keys=False)


def role_limits_hook(limits: dict[str, dict]):
    """KubeSpawner ``pre_spawn_hook``: the person's role's CPU/memory (the largest if several)."""
    from donghaeng.hub.containers import pick_limits

    parsed = {role: RoleLimits(**lim) for role, lim in limits.items()}

    def hook(spawner) -> None:
        lim = pick_limits([g.name for g in spawner.user.groups], parsed)
        spawner.cpu_limit = lim.cpu
        spawner.mem_limit = _k8s_memory(lim.memory)

    return hook
