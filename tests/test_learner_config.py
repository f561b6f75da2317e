"""The learner config dir `donghaeng up` writes: what learners' JupyterLab loads and shows ([learner_ui])."""

from __future__ import annotations

import json

import pytest

from donghaeng.toolkit.glossary import kernel_help_config, load_terms, render_page, term_url
from donghaeng.deploy.jupyter_config import write_lab_overrides, write_learner_config
from donghaeng.common.settings import Lab, Settings, SettingsError, load_settings


def written(tmp_path, **sections) -> dict:
    settings = Settings(lab=Lab(data_dir=tmp_path / "data", user_prefix=tmp_path / "prefix"), **sections)
    write_learner_config(settings)
    write_lab_overrides(settings)
    root = settings.paths.learner_config
    return {
        "server": json.loads((root / "jupyter_server_config.json").read_text()),
        "page": json.loads((root / "labconfig" / "page_config.json").read_text()),
        "learner": json.loads((root / "lab" / "settings" / "overrides.json").read_text()),
        "everyone": json.loads((tmp_path / "prefix/share/jupyter/lab/settings/overrides.json").read_text()),
        "kernel": (tmp_path / "prefix/etc/ipython/ipython_kernel_config.py").read_text(),
        "root": root,
    }


def test_defaults_give_learners_a_focused_korean_view_without_instructor_tools(tmp_path):
    out = written(tmp_path)
    server = out["server"]["ServerApp"]
    assert server["terminals_enabled"] is False
    assert server["jpserver_extensions"]["nbgrader.server_extensions.formgrader"] is False
    assert server["jpserver_extensions"]["nbgrader.server_extensions.assignment_list"] is False
    # JupyterLab reads the learners' own overrides from the learner config dir
    assert out["server"]["LabServerApp"]["app_settings_dir"] == str(out["root"] / "lab" / "settings")
    disabled = out["page"]["disabledExtensions"]
    for plugin in ("@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:assignment-list",
                   "@jupyter/nbgrader:menu", "@jupyterlab/debugger-extension"):
        assert disabled[plugin] is True
    # the learner home (on by default) replaces the file browser and nbgrader's English panels
    assert disabled["@jupyterlab/filebrowser-extension:widget"] is True
    learner = out["learner"]
    assert learner["@jupyterlab/translation-extension:plugin"] == {"locale": "ko_KR"}
    assert learner["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert learner["@jupyterlab/statusbar-extension:plugin"] == {"visible": False}
    assert learner["@jupyterlab/application-extension:shell"]["startMode"] == "single"
    # everyone else keeps the full JupyterLab, in the lab's language, without news
    assert "@jupyterlab/statusbar-extension:plugin" not in out["everyone"]
    assert out["everyone"]["@jupyterlab/translation-extension:plugin"] == {"locale": "ko_KR"}


def test_admin_can_switch_terminal_and_news_back_on_and_hide_files(tmp_path):
    out = written(tmp_path, learner_ui={"terminal": True, "news": True, "focused": False, "file_browser": False})
    assert out["server"]["ServerApp"]["terminals_enabled"] is True
    notification = out["learner"]["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "true" and notification["checkForUpdates"] is True
    assert "@jupyterlab/statusbar-extension:plugin" not in out["learner"]
    assert out["page"]["disabledExtensions"]["@jupyterlab/filebrowser-extension:widget"] is True


def test_without_the_learner_home_learners_keep_files_and_nbgrader_panels(tmp_path):
    out = written(tmp_path, home={"enabled": False})
    disabled = out["page"]["disabledExtensions"]
    assert "@jupyterlab/filebrowser-extension:widget" not in disabled
    assert "@jupyter/nbgrader:assignment-list" not in disabled
    assert disabled["@jupyter/nbgrader:create-assignment"] is True  # instructor tools stay off
    extensions = out["server"]["ServerApp"]["jpserver_extensions"]
    assert "nbgrader.server_extensions.assignment_list" not in extensions
    assert extensions["nbgrader.server_extensions.formgrader"] is False


def test_a_typo_in_learner_ui_is_refused(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text("[learner_ui]\nterminals = true\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="terminals"):
        load_settings(path)


def test_kernel_help_menu_links_to_the_glossary_on_the_learners_server(tmp_path, monkeypatch):
    config = {}

    class Config:
        def __getattr__(self, name):
            return config.setdefault(name, type("Section", (), {})())

    code = kernel_help_config()
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/kim/")
    exec(compile(code, "ipython_kernel_config.py", "exec"), {"get_config": Config})  # noqa: S102
    links = config["IPythonKernel"].help_links
    assert links[0] == {"text": "용어집 (쉬운 말 풀이)", "url": "/user/kim/donghaeng/glossary"}
    assert written(tmp_path)["kernel"] == code


def test_glossary_terms_are_plain_korean_with_anchors():
    terms = load_terms()
    words = [t.word for t in terms]
    assert len(words) >= 25 and len(set(words)) == len(words)
    for word in ("커널", "셀", "토큰", "프롬프트", "모델", "학습", "온도"):
        assert word in words
    page = render_page(terms)
    assert '<html lang="ko">' in page and page.count("<dt>") == len(terms)
    assert term_url("토큰", "/user/kim/") == "/user/kim/donghaeng/glossary#term-토큰"
    assert all(t.plain.endswith("요.") for t in terms)  # whole sentences in 해요체
