"""A real browser (Debian chromium through Playwright) against the real hub.

Korean login page, the Korean wrong-password message, a keyboard-only login, the forced
password change on first login, and the auto-spawned JupyterLab in Korean. Screenshots go to
ARTIFACTS (login.png, login-error.png, change-password.png, lab.png, learner-lab.png).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from labharness import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# the only roster member this module logs in with; test_hub_auth later reuses it via `logged_in`,
# which accepts this same password once lab.passwords says it has been changed
KEY = "ttt_trainer"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:  # what the browser showed when it went wrong
            page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
        context.close()


def keyboard_login(page, login: str, password: str) -> None:
    """Fill the login form with the keyboard alone: the username field has autofocus."""
    page.locator("#username_input").wait_for()
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username_input'")
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password_input"
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def keyboard_new_password(page, lab, login: str) -> None:
    """Choose the first password on the change form with the keyboard alone (the field has autofocus);
    *lab* remembers it, as ``HubUser.logged_in`` expects."""
    new = f"{login}-Pw-2026"
    page.wait_for_function("document.activeElement && document.activeElement.id === 'new_password'")
    page.keyboard.type(new)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "confirm_password"
    page.keyboard.type(new)
    page.keyboard.press("Enter")
    lab.passwords[login] = new


def run_all_cells(page, user, path: str, timeout: float = 180) -> None:
    """Run every cell once the notebook's kernel is up (cells run before that are silently dropped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = user.server("GET", "api/sessions").json()
        if any(s["path"] == path and s["kernel"]["execution_state"] == "idle" for s in sessions):
            break
        time.sleep(1)
    first_prompt = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first
    while time.monotonic() < deadline:
        page.locator(".jp-Notebook .jp-Cell").first.click()
        for _cell in range(page.locator(".jp-Notebook .jp-Cell").count()):
            page.keyboard.press("Shift+Enter")
        time.sleep(3)
        if first_prompt.inner_text().strip() != "[ ]:":
            return
    raise TimeoutError("the notebook's kernel never ran the cells")


def test_login_page_is_korean(lab, page):
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/hub/login")
    expect(page.locator("h1#login-title")).to_contain_text("동행랩에 로그인해요")
    expect(page.locator("label[for=username_input]")).to_contain_text("아이디")
    expect(page.locator("label[for=password_input]")).to_contain_text("비밀번호")
    expect(page.get_by_label("아이디")).to_be_visible()
    expect(page.get_by_label("비밀번호")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)


def test_wrong_password_shows_the_korean_error(lab, page):
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/hub/login")
    keyboard_login(page, lab.logins[KEY], "not-the-password-1")
    expect(page.get_by_role("alert")).to_contain_text("아이디나 비밀번호가 맞지 않아요")
    expect(page.locator("#username_input")).to_have_value(lab.logins[KEY])
    page.screenshot(path=str(ARTIFACTS / "login-error.png"), full_page=True)


def test_first_login_changes_the_password_and_opens_korean_jupyterlab(lab, page):
    from playwright.sync_api import expect

    login = lab.logins[KEY]
    new = f"{login}-Pw-2026"  # what the `logged_in` fixture expects after a change
    page.goto(f"{lab.url}/hub/login")
    if lab.passwords[login] != new:
        keyboard_login(page, login, lab.passwords[login])
        expect(page.locator("h1#pw-title")).to_contain_text("새 비밀번호 정하기")
        page.screenshot(path=str(ARTIFACTS / "change-password.png"), full_page=True)
        keyboard_new_password(page, lab, login)
    else:
        keyboard_login(page, login, new)

    # the hub spawns the server and forwards to JupyterLab
    page.wait_for_url(re.compile(rf"/user/{re.escape(login)}/lab"), timeout=120_000)
    page.locator("#jp-main-dock-panel, .jp-LabShell").first.wait_for(state="visible", timeout=120_000)
    menu = page.locator("#jp-menu-panel, .lm-MenuBar").first
    expect(menu).to_contain_text("파일", timeout=60_000)
    expect(menu).not_to_contain_text("File")
    page.locator(".jp-Launcher, .jp-LauncherBody").first.wait_for(state="visible", timeout=60_000)
    expect(page.locator("body")).to_contain_text("Create Assignment")  # a trainer keeps nbgrader's tools
    page.screenshot(path=str(ARTIFACTS / "lab.png"))


def test_learner_lab_has_no_instructor_tools_or_terminal(lab, logged_in, page):
    from playwright.sync_api import expect

    learner = logged_in("learner")  # password already chosen over HTTP
    page.goto(f"{lab.url}/hub/login")
    keyboard_login(page, learner.name, lab.passwords[learner.name])
    page.wait_for_url(re.compile(rf"/user/{re.escape(learner.name)}/lab"), timeout=120_000)
    page.locator(".jp-Launcher, .jp-LauncherBody").first.wait_for(state="visible", timeout=120_000)
    expect(page.locator("#jp-menu-panel, .lm-MenuBar").first).to_contain_text("파일", timeout=60_000)
    body = page.locator("body")
    expect(body).not_to_contain_text("Create Assignment")
    expect(body).not_to_contain_text("Formgrader")
    expect(page.locator(".jp-LauncherCard", has_text="터미널")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "learner-lab.png"))


WIDGET_NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "from donghaeng.toolkit.widgets import prompt_playground\nprompt_playground(mode=\"task\")"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "from donghaeng.toolkit.widgets import next_token_viewer\nnext_token_viewer()"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_playground_and_next_token_viewer_in_a_learner_lab(lab, logged_in, page):
    """Click through the two model widgets in a spawned learner server, with the real model."""
    from playwright.sync_api import expect

    learner = logged_in("learner2")
    learner.spawn()
    r = learner.server("PUT", "api/contents/widgets.ipynb", json={"type": "notebook", "content": WIDGET_NOTEBOOK})
    assert r.status_code in (200, 201), r.text
    page.goto(f"{lab.url}/hub/login")
    keyboard_login(page, learner.name, lab.passwords[learner.name])
    # ?reset: a fresh workspace, so notebooks that earlier tests left open do not come back
    page.goto(f"{lab.url}/user/{learner.name}/lab/tree/widgets.ipynb?reset")
    first_cell = page.locator(".jp-Notebook .jp-Cell").first
    first_cell.wait_for(state="visible", timeout=120_000)
    run_all_cells(page, learner, "widgets.ipynb")

    task = page.locator(".widget-textarea", has=page.locator("label", has_text="작업")).locator("textarea").first
    task.wait_for(state="visible", timeout=120_000)
    task.fill("회의 일정을 알리는 문자를 써 주세요.")
    waiting = page.locator(".widget-html-content", has_text="'실행하기'를 누르면 여기에 답이 나와요.")
    empty_answers = waiting.count()  # answer A, and the hidden answer B of the A/B mode
    page.get_by_role("button", name="실행하기").first.click()
    expect(waiting).to_have_count(empty_answers - 1, timeout=240_000)  # answer A got text
    body = page.locator("body")
    for problem in ("연결하지 못했어요", "만들지 못했어요", "잠시 후 다시"):
        expect(body).not_to_contain_text(problem)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)

    page.get_by_role("button", name="다음 토큰 보기").first.click()
    chart = page.locator(".jp-OutputArea img, .widget-output img").last
    chart.wait_for(state="visible", timeout=240_000)
    chart.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "next-token.png"), full_page=True)
    expect(body).not_to_contain_text("Traceback")
