"""`donghaeng k8s values`: Zero to JupyterHub values from lab.toml, checked against the chart's schema."""

from __future__ import annotations

import copy
import subprocess
import sys
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from donghaeng.deploy import k8s
from donghaeng.deploy.image_refs import HUB_IMAGE, LEARNER_IMAGE
from donghaeng.common.settings import load_settings

SETTINGS = """
[lab]
data_dir = "/var/tmp/donghaeng-k8s-test"
spawner = "docker"

[[courses]]
id = "ai-basics"
title = "모두를 위한 AI 기초"

[[courses]]
id = "ttt"
title = "TTT 강사 과정"

[class_start]
idle_timeout = 1800

[containers]
allow_internet = false

[containers.limits.learner]
cpu = 0.5
memory = "768M"

[containers.limits.trainer]
cpu = 2
memory = "3G"
"""


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(SETTINGS, encoding="utf-8")
    return path


def test_cli_writes_values_that_fit_the_chart_schema(settings_file, tmp_path):
    out = tmp_path / "values.yaml"
    result = subprocess.run([sys.executable, "-m", "donghaeng", "k8s", "values", "-s", str(settings_file),
                             "-o", str(out), "--placeholders", "5"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    values = yaml.safe_load(out.read_text(encoding="utf-8"))
    k8s.validate(values)  # what helm checks: our values over the chart's defaults

    single = values["singleuser"]
    assert f"{single['image']['name']}:{single['image']['tag']}" == LEARNER_IMAGE
    assert f"{values['hub']['image']['name']}:{values['hub']['image']['tag']}" == HUB_IMAGE
    assert single["cpu"]["limit"] == 0.5 and single["memory"]["limit"] == "768Mi"
    assert values["cull"] == {"enabled": True, "timeout": 1800, "every": 180}
    assert values["scheduling"]["userPlaceholder"] == {"enabled": True, "replicas": 5}
    assert values["scheduling"]["userScheduler"]["enabled"] is True
    assert single["networkPolicy"]["egressAllowRules"]["nonPrivateIPs"] is False
    # no shared exchange volume: learners' servers reach the exchange service over HTTP
    assert "extraVolumes" not in single["storage"] and "extraVolumeMounts" not in single["storage"]
    assert single["extraEnv"]["DONGHAENG_EXCHANGE_URL"] == k8s.EXCHANGE_URL
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == "donghaeng.hub.auth.RosterAuthenticator"
    # trainers' larger limits reach the hub pod through `custom`, applied by our pre_spawn_hook
    assert values["custom"]["donghaeng"]["limits"]["trainer"] == {"cpu": 2.0, "memory": "3G"}


def test_per_role_hook_gives_trainers_their_limits(settings_file):
    values = k8s.values(load_settings(settings_file))
    hook = k8s.role_limits_hook(values["custom"]["donghaeng"]["limits"])

    class Group:
        def __init__(self, name):
            self.name = name

    class Spawner:  # the two attributes KubeSpawner's hook sets, on a user with hub groups
        cpu_limit = mem_limit = None

        def __init__(self, *groups):
            self.user = type("U", (), {"groups": [Group(g) for g in groups]})()

    trainer, learner = Spawner("trainer", "nbgrader-ai-basics"), Spawner("learner")
    hook(trainer)
    hook(learner)
    assert (trainer.cpu_limit, trainer.mem_limit) == (2.0, "3Gi")
    assert (learner.cpu_limit, learner.mem_limit) == (0.5, "768Mi")


@pytest.mark.parametrize("path, bad", [
    (("singleuser", "cpu", "limit"), "two cores"),
    (("cull", "timeout"), "1h"),
    (("scheduling", "userPlaceholder", "replicas"), -1.5),
    (("singleuser", "storage", "no_such_key"), 1),
])
def test_a_broken_value_is_rejected(settings_file, path, bad):
    values = copy.deepcopy(k8s.values(load_settings(settings_file)))
    node = values
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        k8s.validate(values)


def test_bad_limit_in_lab_toml_is_refused_before_any_yaml(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(SETTINGS.replace('memory = "768M"', 'memory = "lots"'), encoding="utf-8")
    out = tmp_path / "values.yaml"
    result = subprocess.run([sys.executable, "-m", "donghaeng", "k8s", "values", "-s", str(path), "-o", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "containers.limits.learner.memory" in result.stderr
    assert not out.exists()


def test_https_and_postgresql_reach_the_chart_without_key_or_password(tmp_path):
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    key.write_text("-----BEGIN PRIVATE KEY-----\nsecret-key-material\n", encoding="utf-8")
    key.chmod(0o600)
    path = tmp_path / "lab.toml"
    path.write_text(SETTINGS.replace("[class_start]", f'[lab.https]\nenabled = true\ncert = "{cert}"\nkey = "{key}"\n'
                                     f'domain = "lab.example.kr"\n\n[database]\n'
                                     f'hub_url = "postgresql://donghaeng_hub@db.internal:5432/donghaeng_hub"\n\n'
                                     "[class_start]", 1), encoding="utf-8")
    values = k8s.values(load_settings(path))
    k8s.validate(values)
    assert values["proxy"]["https"] == {"enabled": True, "type": "secret", "hosts": ["lab.example.kr"],
                                        "secret": {"name": k8s.TLS_SECRET, "key": "tls.key", "crt": "tls.crt"}}
    assert values["hub"]["db"]["type"] == "postgres" and "db.internal:5432/donghaeng_hub" in values["hub"]["db"]["url"]
    dumped = k8s.dump(values)
    assert "secret-key-material" not in dumped and urlsplit(values["hub"]["db"]["url"]).password is None
