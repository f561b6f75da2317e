"""WCAG 2.1 AA in a real browser: axe-core on every hub page a learner sees, the font-size control,
keyboard-only login, and the learner's focused Korean notebook view with the accessible widgets.

Screenshots go to ARTIFACTS (a11y-*.png); the measured Hangul shares are printed (run with -s).
"""

from __future__ import annotations

import re

import pytest
import test_browser
from a11y import axe_violations, describe, hangul_share
from labharness import ARTIFACTS
from test_browser import CHROMIUM, keyboard_login

# the same Playwright fixtures as the other browser tests
browser = test_browser.browser
page = test_browser.page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"),
]
KEY = "learner"


def check_page(page, name: str, min_hangul: float = 0.9) -> None:
    """No serious/critical axe violation, Korean visible text, and a screenshot for the record."""
    page.screenshot(path=str(ARTIFACTS / f"a11y-{name}.png"), full_page=True)
    violations = axe_violations(page)
    assert not violations, f"{name}: {describe(violations)}"
    share = hangul_share(page)
    print(f"{name}: Hangul share {share:.2f}")
    assert share >= min_hangul, f"{name}: only {share:.0%} of the visible letters are Hangul"
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert page.locator("main").count() == 1, f"{name}: needs exactly one main landmark"


@pytest.fixture
def learner(lab, logged_in):
    return logged_in(KEY)


def browser_login(lab, page, user) -> None:
    page.goto(f"{lab.url}/hub/login")
    keyboard_login(page, user.name, lab.passwords[user.name])


def test_login_pages_pass_axe(lab, page):
    page.goto(f"{lab.url}/hub/login")
    check_page(page, "login")
    page.locator("#username_input").fill(lab.logins[KEY])
    page.locator("#password_input").fill("not-the-password-1")
    page.locator("#login_submit").click()
    page.get_by_role("alert").wait_for()
    check_page(page, "login-error")


def test_pages_of_a_logged_in_learner_pass_axe(lab, page, learner):
    from playwright.sync_api import expect

    browser_login(lab, page, learner)  # logging in starts the server
    learner.stop()
    page.goto(f"{lab.url}/hub/home")
    expect(page.locator("#start")).to_contain_text("시작하기")
    check_page(page, "home-stopped")

    page.goto(f"{lab.url}/hub/change-password")
    expect(page.locator("h1#pw-title")).to_be_visible()
    check_page(page, "change-password")

    page.goto(f"{lab.url}/hub/this-page-does-not-exist")
    expect(page.locator("h1")).to_contain_text("페이지를 찾을 수 없어요")
    check_page(page, "404")

    page.goto(f"{lab.url}/hub/user/{learner.name}/lab")  # server stopped: the not-running page
    expect(page.locator("#start")).to_be_visible()
    check_page(page, "not-running")

    # hold the progress stream, so the spawn-pending page stays while axe looks at it
    page.route(re.compile(r"/server/progress"), lambda route: None)
    page.goto(f"{lab.url}/hub/spawn/{learner.name}")
    page.wait_for_url(re.compile(r"/hub/spawn-pending/"))
    expect(page.locator("#progress-bar")).to_be_attached()
    check_page(page, "spawn-pending")
    page.unroute(re.compile(r"/server/progress"))

    learner.spawn()
    page.goto(f"{lab.url}/hub/home")
    expect(page.locator("#stop")).to_be_visible()
    check_page(page, "home-running")

    page.goto(f"{lab.url}/hub/logout")
    page.wait_for_load_state()
    check_page(page, "logout")


def test_font_size_control_persists(lab, page):
    page.goto(f"{lab.url}/hub/login")
    size = "parseFloat(getComputedStyle(document.documentElement).fontSize)"
    before = page.evaluate(size)
    page.get_by_role("button", name="글자 크게").click()
    page.get_by_role("button", name="글자 크게").click()
    larger = page.evaluate(size)
    assert larger > before
    page.reload()
    assert page.evaluate(size) == larger  # kept in localStorage across pages
    heading = page.locator("h1#login-title")
    assert heading.bounding_box()["height"] > 0
    page.get_by_role("button", name="글자 작게").click()
    assert page.evaluate(size) < larger


def test_skip_link_and_visible_focus_with_the_keyboard_alone(lab, page, learner):
    browser_login(lab, page, learner)
    page.goto(f"{lab.url}/hub/home")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    box = skip.bounding_box()
    assert box and box["y"] >= 0, "the focused skip link is on screen"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main-content"
    page.keyboard.press("Tab")  # the next stop is the page's first control: the start/open button
    assert page.evaluate("document.activeElement.id") == "start"


def test_english_fallback_only_on_request(lab, page):
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/hub/login")
    english = page.locator(".en-fallback", has_text="Sign in to Donghaeng Lab")
    expect(english).to_be_hidden()  # a Korean browser sees Korean only
    page.get_by_role("button", name="영어 함께 보기 (Show English)").click()
    expect(english).to_be_visible()
    page.reload()
    expect(english).to_be_visible()
    page.get_by_role("button", name="영어 함께 보기 (Show English)").click()
    expect(english).to_be_hidden()


WIDGETS_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# 위젯 실습\n아래 칸을 차례로 실행해요."},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "from donghaeng.toolkit.widgets import prompt_playground\nprompt_playground()"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "from donghaeng.toolkit.widgets import choice_question\n"
                   "choice_question('a11y-q1', '토큰은 무엇일까요?', ['글의 작은 조각', '비밀번호'])"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "from donghaeng.toolkit.widgets import next_token_viewer, tokenizer_explorer\n"
                   "display(next_token_viewer(), tokenizer_explorer())"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "from donghaeng.toolkit.widgets import pii_masking_exercise\n"
                   "pii_masking_exercise('a11y-q2', '김하늘 010-1234-5678')"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}
WIDGET_AREA = ".jp-OutputArea-output"
NOTEBOOK_NAME = "위젯-실습.ipynb"


def test_learner_notebook_view_and_widgets_are_accessible_and_korean(lab, logged_in, page):
    """A learner's focused notebook: axe on the widgets, names for every control, keyboard use, Korean."""
    from playwright.sync_api import expect

    learner = logged_in("learner2")
    learner.spawn()
    r = learner.server("PUT", f"api/contents/{NOTEBOOK_NAME}", json={"type": "notebook", "content": WIDGETS_NOTEBOOK})
    assert r.status_code in (200, 201), r.text
    browser_login(lab, page, learner)
    page.goto(f"{lab.url}/user/{learner.name}/lab/tree/{NOTEBOOK_NAME}?reset")  # a fresh workspace
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=120_000)

    # the focused learner view: no status bar, no kernel chooser (this lab runs without the learner home,
    # so nbgrader's own learner panels stay; with the home they go: tests/test_learner_journey.py)
    expect(page.locator("#jp-main-statusbar")).to_be_hidden()
    expect(page.locator(".jp-KernelName")).to_have_count(0)

    test_browser.run_all_cells(page, learner, NOTEBOOK_NAME)
    page.locator(".widget-textarea textarea").first.wait_for(state="visible", timeout=120_000)
    page.locator(".widget-radio-box").first.wait_for(state="visible", timeout=120_000)
    page.get_by_role("button", name="다음 토큰 보기").first.wait_for(state="visible", timeout=120_000)
    page.locator(".widget-checkbox, .widget-textarea").last.wait_for(state="visible", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "a11y-widgets.png"), full_page=True)

    violations = axe_violations(page, include=WIDGET_AREA)
    assert not violations, describe(violations)
    unnamed = page.evaluate("""(area) => [...document.querySelectorAll(
        `${area} input, ${area} textarea, ${area} select, ${area} button, ${area} [role=slider]`)]
        .filter(el => !el.closest('[hidden], .widget-label') && el.getClientRects().length)
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !el.getAttribute('aria-labelledby') && !el.title && !el.textContent.trim())
        .map(el => el.outerHTML.slice(0, 120))""", WIDGET_AREA)
    assert not unnamed, f"controls without an accessible name: {unnamed}"

    # keyboard only: choose an answer with the arrow keys and save it with Enter
    radio = page.get_by_role("radio", name="글의 작은 조각")
    radio.focus()
    page.keyboard.press("Space")
    expect(radio).to_be_checked()
    stops = []
    for _ in range(5):  # the save button is a few Tab stops after the choices
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.outerHTML.slice(0, 80)"))
        if page.evaluate("document.activeElement.textContent.trim()") == "저장하기":
            break
    else:
        raise AssertionError(f"Tab never reached the save button: {stops}")
    page.keyboard.press("Enter")
    expect(page.locator(WIDGET_AREA, has_text="저장했어요").first).to_be_visible(timeout=30_000)

    # the glossary is one click away from the notebook: the kernel's Help menu links to it
    page.get_by_role("menuitem", name="도움말").click()
    glossary_item = page.get_by_role("menuitem", name=re.compile("용어집"))
    expect(glossary_item).to_be_visible()
    page.keyboard.press("Escape")

    chrome = hangul_share(page, exclude=(".jp-Notebook",))
    share = hangul_share(page, exclude=(".jp-InputArea-editor",))
    print(f"learner notebook: Hangul share {share:.2f} (code cells not counted); chrome alone {chrome:.2f}")
    assert share >= 0.9
    page.screenshot(path=str(ARTIFACTS / "a11y-widgets-used.png"), full_page=True)


def test_glossary_page_is_accessible_plain_korean(lab, logged_in, page):
    from playwright.sync_api import expect

    from donghaeng.toolkit.glossary import load_terms

    learner = logged_in("learner2")
    learner.spawn()
    browser_login(lab, page, learner)
    page.goto(f"{lab.url}/user/{learner.name}/donghaeng/glossary#term-토큰")
    expect(page.locator("h1")).to_contain_text("용어집")
    terms = load_terms()
    assert len(terms) >= 25
    expect(page.locator("dt")).to_have_count(len(terms))
    for word in ("커널", "셀", "토큰", "프롬프트", "모델", "학습", "온도"):
        expect(page.locator("dt", has_text=word).first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "a11y-glossary.png"), full_page=True)
    violations = axe_violations(page)
    assert not violations, describe(violations)
    # every term's index link is reachable with the keyboard and lands on its explanation
    page.get_by_role("link", name="온도").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("decodeURIComponent(location.hash)") == "#term-온도"
    # each term shows its English original on purpose (marked lang="en"); everything else is Korean
    assert hangul_share(page, ('[lang="en"]',)) >= 0.9
    print(f"glossary: Hangul share {hangul_share(page):.2f} with the English originals beside the Korean")
