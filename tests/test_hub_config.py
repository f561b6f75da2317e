"""lab.toml -> JupyterHub traitlets, per spawner mode, without starting a hub (as TLJH's configurer tests do).

``donghaeng.hub.config.configure`` makes no network or Docker call, so each mode is checked in milliseconds;
the hub-starting tests (test_course_flow, test_containers, test_swarm) then cover the running lab.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from traitlets.config import Config

from donghaeng.hub import config as hubconfig
from donghaeng.common.settings import Settings, SettingsError, load_settings

MODES = {"local": "127.0.0.1", "docker": "172.30.0.1", "swarm": "10.0.0.5"}
LEARNER_URLS = {"DONGHAENG_MODEL_URL": "model", "DONGHAENG_HOME_URL": "home", "DONGHAENG_EXCHANGE_URL": "exchange"}


def lab_settings(tmp_path: Path, text: str = "") -> Settings:
    """The repo's lab.toml with the data folder in *tmp_path*, plus *text* (TOML) appended."""
    source = Path(hubconfig.REPO_ROOT / "hub" / "lab.toml").read_text(encoding="utf-8")
    source = source.replace('data_dir = "/srv/donghaeng"', f'data_dir = "{tmp_path / "data"}"', 1)
    path = tmp_path / "lab.toml"
    path.write_text(source + "\n" + text, encoding="utf-8")
    return load_settings(path)


def configured(settings: Settings, spawner: str) -> Config:
    c = Config()
    settings = settings.model_copy(update={"lab": settings.lab.model_copy(update={"spawner": spawner})})
    hubconfig.configure(c, settings, MODES[spawner])
    return c


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return lab_settings(tmp_path)


@pytest.mark.parametrize("spawner", MODES)
def test_learners_servers_reach_every_service_they_call_in_each_mode(settings, spawner):
    """The home URL stayed on 127.0.0.1 in docker and swarm mode, so deadline checks and help requests
    from containers failed quietly: each learner-facing address must be the service's own, on the host
    the learners' servers reach."""
    c = configured(settings, spawner)
    host = MODES[spawner]
    services = {spec["name"]: spec for spec in c.JupyterHub.services}
    assert c.JupyterHub.hub_ip == host
    for env_name, service in LEARNER_URLS.items():
        url = urlsplit(c.Spawner.environment[env_name])
        listens = urlsplit(services[service]["url"])
        assert (url.hostname, url.port) == (host, listens.port), (env_name, url, listens)
        assert listens.hostname == host


@pytest.mark.parametrize("spawner", MODES)
def test_spawner_class_and_token_scopes_per_mode(settings, spawner):
    c = configured(settings, spawner)
    expected = {"local": "SystemUserSpawner", "docker": "LabDockerSpawner", "swarm": "LabSwarmSpawner"}[spawner]
    assert c.JupyterHub.spawner_class.__name__ == expected
    scopes = c.Spawner.server_token_scopes
    for service in LEARNER_URLS.values():
        assert f"access:services!service={service}" in scopes
    names = [spec["name"] for spec in c.JupyterHub.services]
    assert len(names) == len(set(names)), names


def test_the_same_settings_give_the_same_config(settings):
    """Config is set once from the settings, never patched afterwards: two runs agree."""
    first, second = configured(settings, "docker"), configured(settings, "docker")
    assert first.JupyterHub.services == second.JupyterHub.services
    assert first.Spawner.environment == second.Spawner.environment


def test_formgrader_gets_no_autograde_settings_of_its_own(settings):
    """Formgrader grades with the course's nbgrader_config.py (lab.toml's [autograde] as traitlets), like the
    CLI: nothing about grading travels in its environment any more."""
    c = configured(settings, "local")
    for course in settings.courses:
        spec = next(s for s in c.JupyterHub.services if s["name"] == course.grader_user)
        assert not [k for k in spec["environment"] if k.startswith("DONGHAENG_AUTOGRADE")]
        assert spec["api_token"]  # the exchange knows the grader's CLI runs by this token


def test_class_start_table_sets_the_spawn_queue(tmp_path):
    c = configured(lab_settings(tmp_path, "[class_start]\nspawn_concurrency = 2\nidle_timeout = 0\n"), "local")
    assert c.Spawner.spawn_concurrency == 2
    assert "idle-culler" not in {spec["name"] for spec in c.JupyterHub.services}


@pytest.mark.parametrize(("table", "key", "moved"), [
    ("lab", "autograde_timeout = 5", "autograde_timeout -> [autograde] timeout"),
    ("containers", "idle_timeout = 5", "idle_timeout -> [class_start] idle_timeout"),
])
def test_an_old_lab_toml_says_where_a_key_moved(tmp_path, table, key, moved):
    path = tmp_path / "lab.toml"
    path.write_text(f"[{table}]\n{key}\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"옮겨졌어요") as error:
        load_settings(path)
    assert moved in str(error.value)


def test_the_settings_reference_is_the_schema():
    """docs/settings.md is generated: a field added or described differently must be regenerated."""
    from donghaeng.common.settings_reference import reference

    documented = (hubconfig.REPO_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert documented == reference(), "run: python -m donghaeng.common.settings_reference > docs/settings.md"
