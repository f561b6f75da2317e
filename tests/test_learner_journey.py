"""A new learner's whole journey in a real browser: login → new password → learner home → 시작하기 →
a widget exercise by clicking → 제출하기 → (trainer grades and releases feedback) → 채점 완료 + score →
feedback.  No file browser, no typed code.  Also a keyboard-only pass over login → home → start → submit.

Measures the Hangul share of visible text on every learner page (asserted ≥ 0.9 on the learner home
pages, printed for the hub, notebook and feedback pages), runs axe-core on login and home, counts clicks,
and saves a screenshot of each step in ARTIFACTS (journey-*.png, keyboard-*.png).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from a11y import axe_violations, describe, hangul_share
from labharness import ARTIFACTS
from test_browser import CHROMIUM, browser, keyboard_new_password, page  # noqa: F401  (fixtures)

COURSE, ASSIGNMENT = "ai-basics", "m1-first-steps"
NOTEBOOK = f"{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
# m1 question 1's right option, as the answer key says (the options are shuffled per question)
ANSWER = json.loads((Path(__file__).resolve().parent.parent / "assignments" / COURSE / "answer-keys"
                     / f"{ASSIGNMENT}.answers.json").read_text(encoding="utf-8"))[f"{ASSIGNMENT}.q1"]
CODE = (".jp-InputArea-editor", ".cm-editor")  # the notebook's Python is content, not UI text
FEEDBACK_CODE = ("div.input_area", ".highlight")  # the same code cells on nbgrader's feedback page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def released(home_lab):
    home_lab.cli("course", "release", COURSE, ASSIGNMENT)
    return home_lab


@pytest.fixture
def tablet(page):
    """test_browser's page at a tablet's landscape width: the home must work there."""
    page.set_viewport_size({"width": 1024, "height": 768})
    return page


class Journey:
    """Counts clicks and records the Hangul share and a screenshot of each step."""

    def __init__(self, page, prefix: str) -> None:
        self.page, self.prefix = page, prefix
        self.clicks = 0
        self.shares: dict[str, float] = {}

    def click(self, locator) -> None:
        locator.click()
        self.clicks += 1

    def step(self, name: str, exclude: tuple[str, ...] = ()) -> float:
        self.page.screenshot(path=str(ARTIFACTS / f"{self.prefix}-{len(self.shares) + 1}-{name}.png"), full_page=True)
        self.shares[name] = round(hangul_share(self.page, exclude), 3)
        return self.shares[name]


def assert_accessible(page) -> None:
    violations = axe_violations(page)
    assert not violations, describe(violations)


def wait_for_notebook(page, login: str) -> None:
    # the focused notebook view (JupyterLab's /doc, or /lab where it is not set up)
    page.wait_for_url(re.compile(rf"/user/{re.escape(login)}/(lab|doc)/tree/{re.escape(NOTEBOOK)}"), timeout=180_000)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=120_000)
    page.locator("button.dh-submit").wait_for(state="visible", timeout=60_000)
    # the learner home replaces nbgrader's English panels: no nbgrader menu, no Validate button
    from playwright.sync_api import expect

    expect(page.locator(".lm-MenuBar")).not_to_contain_text("Nbgrader")
    expect(page.locator(".jp-Notebook-toolbar, .jp-NotebookPanel-toolbar").first).not_to_contain_text("Validate")


def test_new_learner_from_login_to_feedback(released, tablet):
    page = tablet
    from playwright.sync_api import expect

    lab = released
    login = lab.logins["walker"]
    started = time.monotonic()
    j = Journey(page, "journey")

    page.goto(f"{lab.url}/hub/login")
    j.step("login")
    assert_accessible(page)
    page.get_by_label("아이디").fill(login)
    page.get_by_label("비밀번호").fill(lab.passwords[login])
    j.click(page.locator("#login_submit"))

    expect(page.locator("h1#pw-title")).to_contain_text("새 비밀번호 정하기")
    j.step("change-password")
    new = f"{login}-Pw-2026"
    page.locator("#new_password").fill(new)
    page.locator("#confirm_password").fill(new)
    j.click(page.locator("#change_submit"))
    lab.passwords[login] = new

    page.wait_for_url(re.compile(r"/services/home/"), timeout=60_000)
    card = page.locator("article.card", has_text="AI 첫걸음")
    expect(card.locator(".state")).to_have_text("시작 전")
    assert j.step("home") >= 0.9
    assert_accessible(page)

    j.click(card.get_by_role("link", name="AI 첫걸음 시작하기"))
    wait_for_notebook(page, login)
    expect(page.locator(".jp-DirListing")).not_to_be_visible()  # no file browser on the way
    # run the question's widget cell with the toolbar's run button, once the kernel is idle
    page.locator(".jp-NotebookPanel-toolbar [data-status='idle']").first.wait_for(state="attached", timeout=120_000)
    # the question's code is folded away: select the question's text, then run it and the folded cell after it
    j.click(page.locator(".jp-MarkdownCell", has_text="문제 1. 골라 보세요").first)
    run = page.locator(".jp-NotebookPanel-toolbar [data-command='notebook:run-cell-and-select-next']").first
    j.click(run)
    j.click(run)
    choice = page.get_by_role("radio", name=ANSWER)
    choice.wait_for(state="visible", timeout=120_000)
    j.step("notebook", CODE)
    j.click(choice)
    j.click(page.get_by_role("button", name="저장하기").first)
    expect(page.locator(".widget-html-content", has_text="저장했어요").first).to_be_visible(timeout=60_000)
    j.step("widget-answered", CODE)

    j.click(page.locator("button.dh-submit"))
    dialog = page.get_by_role("dialog", name="제출할까요?")
    expect(dialog).to_contain_text("마감")
    j.step("confirm", CODE)
    j.click(dialog.get_by_role("button", name="제출하기"))
    receipt = page.get_by_role("dialog", name="제출했어요")
    expect(receipt).to_contain_text("접수 시각")
    j.step("receipt", CODE)
    j.click(receipt.get_by_role("button", name="확인"))

    # the trainer grades and returns feedback from the command line
    lab.cli("course", "collect", COURSE, ASSIGNMENT)
    lab.cli("course", "autograde", COURSE, ASSIGNMENT, check=False)  # other learners' test notebooks may fail
    lab.cli("course", "feedback", COURSE, ASSIGNMENT)

    page.goto(f"{lab.url}/services/home/")
    card = page.locator("article.card", has_text="AI 첫걸음")
    expect(card.locator(".state")).to_have_text("채점 완료 · 피드백 있음")
    expect(card.locator(".score")).to_have_text("점수 2점 / 9점")  # question 1; questions 2 and 3 left unanswered
    assert j.step("home-graded") >= 0.9
    assert_accessible(page)
    j.click(card.get_by_role("link", name="AI 첫걸음 피드백 보기"))
    expect(page.locator("body")).to_contain_text("점수")
    assert j.step("feedback", FEEDBACK_CODE) >= 0.9  # errors are said in Korean, tracebacks folded away

    elapsed = time.monotonic() - started
    print(f"\nlearner journey: {j.clicks} clicks, {elapsed:.0f} s (spawn and grading included)")
    print("Hangul share per page:", j.shares)


def focus_by_tab(page, selector: str, limit: int = 100, key: str = "Tab") -> None:
    """Press Tab (or Shift+Tab) until the element matching *selector* has the keyboard focus."""
    path = []
    for _ in range(limit):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        path.append(page.evaluate(DESCRIBE_FOCUS))
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached {selector}; focus went: {' > '.join(path[:60])}")


DESCRIBE_FOCUS = """() => { const e = document.activeElement; if (!e) return '-';
    return e.tagName + (e.id ? '#' + e.id : '') + '.' + [...e.classList].slice(0, 2).join('.')
        + '[' + (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 12) + ']'; }"""


def test_keyboard_only_login_home_start_submit(released, tablet):
    page = tablet
    from playwright.sync_api import expect

    lab = released
    login = lab.logins["learner"]
    page.goto(f"{lab.url}/hub/login")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username_input'")
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    page.keyboard.type(lab.passwords[login])
    page.keyboard.press("Enter")
    page.locator("h1#pw-title").or_(page.locator("article.card")).first.wait_for(timeout=60_000)
    if page.locator("h1#pw-title").is_visible():  # first login: choose a password, by keyboard
        keyboard_new_password(page, lab, login)
    page.wait_for_url(re.compile(r"/services/home/"), timeout=60_000)
    focus_by_tab(page, "a.skip")  # the first stop is the skip link
    focus_by_tab(page, "a.button.start")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus can be seen
    page.screenshot(path=str(ARTIFACTS / "keyboard-1-home.png"), full_page=True)
    page.keyboard.press("Enter")
    wait_for_notebook(page, login)
    # the notebook has the focus, and Tab inside a code cell indents: go back to its toolbar instead,
    # which is one tab stop whose buttons the arrow keys walk (the ARIA toolbar pattern)
    page.wait_for_function("document.activeElement && document.activeElement.closest('.jp-Notebook')")
    focus_by_tab(page, ".jp-NotebookPanel-toolbar *", key="Shift+Tab")
    focus_by_tab(page, "button.dh-submit", key="ArrowLeft", limit=30)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="제출할까요?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")  # from 취소 (focused first, the safe choice) to 제출하기
    assert page.evaluate("document.activeElement.textContent") == "제출하기"
    page.keyboard.press("Enter")
    receipt = page.get_by_role("dialog", name="제출했어요")
    expect(receipt).to_contain_text("접수 시각")
    page.screenshot(path=str(ARTIFACTS / "keyboard-2-receipt.png"), full_page=True)
    page.keyboard.press("Enter")
    expect(receipt).to_have_count(0)
    expect(page.locator(".dh-status")).to_contain_text("제출했어요")
