"""Module 1 end to end in a real browser, with the mouse and the keyboard only (no code typed).

A new learner logs in and chooses a password by keyboard, opens m1 from the learner home with Tab and
Enter, runs the notebook with Shift+Enter, answers every question by clicking (the token count is
read off the tokenizer explorer and typed into the number box), lets the real model continue a
pre-filled beginning in the playground, writes the reflection, saves with Ctrl+S and submits.  The
trainer's real collect → autograde → feedback then gives full marks for every autograded question.

Also checked on the way: the learner's server serves the 18 px style sheet and the notebook is drawn
at 18 px, the model-kind box explains the base model, and no output area, feedback page or
home page shows an English traceback.  Screenshots: ARTIFACTS/m1-*.png.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labharness import ARTIFACTS, running_lab
from test_browser import CHROMIUM, browser, keyboard_login, keyboard_new_password, page  # noqa: F401  (fixtures)
from test_learner_journey import focus_by_tab, wait_for_notebook

from donghaeng.deploy.jupyter_config import LEARNER_CSS
from donghaeng.common.settings import PACKAGED_MODEL

COURSE, ASSIGNMENT = "ai-basics", "m1-first-steps"
NOTEBOOK = f"{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
KEY = json.loads((Path(__file__).resolve().parent.parent / "assignments" / COURSE / "answer-keys"
                  / f"{ASSIGNMENT}.answers.json").read_text(encoding="utf-8"))
PEOPLE = {"m1walker": ("강도윤", "learner", COURSE)}
REFLECTION = "주간 회의록 요약을 맡겨 보고 싶어요. 고객 이름과 전화번호는 지우고 넣고, 요약은 제가 다시 확인할게요."
ENGLISH_ERRORS = ("Traceback", "Error:")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def m1_lab():
    """A lab of its own with the learner home and the real model service (the packaged base model)."""
    import os

    from donghaeng.services.model.build import is_usable
    from donghaeng.common.settings import ModelService

    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    if not (PACKAGED_MODEL.is_file() and is_usable(ModelService().engine_binary)):
        pytest.skip("needs the packaged model and llama-server (./lab up installs them)")
    with running_lab(PEOPLE) as lab:
        lab.cli("course", "release", COURSE, ASSIGNMENT)
        yield lab


def cell(page, text: str):
    """The notebook cell whose content shows *text* (cells are not nested, so this is one cell)."""
    return page.locator(".jp-Notebook .jp-Cell", has_text=text).first


def cell_with(page, inner):
    """The notebook cell that holds *inner* (a locator)."""
    return page.locator(".jp-Notebook .jp-Cell", has=inner).first


def save_answer(where) -> None:
    from playwright.sync_api import expect

    where.get_by_role("button", name="저장하기").click()
    expect(where.locator(".widget-html-content", has_text="저장했어요").first).to_be_visible(timeout=60_000)


def assert_no_english_errors(page, selector: str) -> None:
    shown = "\n".join(page.locator(selector).all_inner_texts())
    for word in ENGLISH_ERRORS:
        assert word not in shown, f"{selector} shows {word!r}:\n{shown[:3000]}"


@pytest.mark.timeout(1800)
def test_m1_by_mouse_and_keyboard_to_full_marks(m1_lab, page):
    from playwright.sync_api import expect

    lab = m1_lab
    login = lab.logins["m1walker"]
    page.set_viewport_size({"width": 1280, "height": 900})

    # login and the first password, by keyboard
    page.goto(f"{lab.url}/hub/login")
    keyboard_login(page, login, lab.passwords[login])
    expect(page.locator("h1#pw-title")).to_contain_text("새 비밀번호 정하기")
    keyboard_new_password(page, lab, login)

    # the learner home: Tab to 시작하기, Enter
    page.wait_for_url(re.compile(r"/services/home/"), timeout=60_000)
    focus_by_tab(page, "a.button.start")
    page.keyboard.press("Enter")
    wait_for_notebook(page, login)
    page.locator(".jp-NotebookPanel-toolbar [data-status='idle']").first.wait_for(state="attached", timeout=180_000)

    # 18 px for learners: the style sheet the learner's server serves, and the text as drawn
    css = page.request.get(f"{lab.url}/user/{login}/custom/custom.css")
    assert css.ok and css.text() == LEARNER_CSS, css.text()
    intro = cell(page, "오늘 배울 것").locator(".jp-RenderedMarkdown li").first
    assert intro.evaluate("e => getComputedStyle(e).fontSize") == "18px"

    # run the notebook from the top: select the first cell by its prompt area, then Shift+Enter down to the end
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.first.locator(".jp-InputPrompt").click()
    for _ in range(cells.count() - 1):  # the last cell is text; one more Shift+Enter would add a cell
        page.keyboard.press("Shift+Enter")
    # the kernel has run them all once the last code cell (the code corner) has printed
    expect(page.locator(".jp-OutputArea", has_text="띄어쓰기로 나눈 조각:")).to_have_count(1, timeout=300_000)

    # question 1: the right option, then 저장하기
    q1 = cell(page, "다음 중 언어 모델이 하는 일에 가장 가까운 것은")
    right = q1.get_by_role("radio", name=KEY[f"{ASSIGNMENT}.q1"])
    right.click(timeout=180_000)
    assert right.evaluate("e => getComputedStyle(e.closest('label')).fontSize") == "18px"  # widgets too
    save_answer(q1)

    # question 2: read the count the tokenizer explorer shows for the question's sentence
    explorer = cell_with(page, page.get_by_role("button", name="문제 문장 넣기"))
    explorer.get_by_role("button", name="문제 문장 넣기").click(timeout=120_000)
    count_line = explorer.locator("[role=status]", has_text=re.compile(r"토큰 \d+개 · 글자"))
    expect(count_line).to_contain_text("글자 22자", timeout=180_000)
    tokens = int(re.search(r"토큰 (\d+)개", count_line.inner_text()).group(1))
    q2 = cell(page, "보내 주세요\"를 토큰 몇 개로 나눌까요?")
    number = q2.get_by_label("내 답")
    number.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(tokens))  # a number into the answer box: the one thing typed on the keyboard
    page.keyboard.press("Tab")
    save_answer(q2)

    # question 3: tick the two right statements
    q3 = cell(page, "맞는 설명을 모두 골라 주세요")
    for statement in KEY[f"{ASSIGNMENT}.q3"]:
        q3.get_by_role("checkbox", name=statement).click()
    save_answer(q3)

    # section 4: the model-kind box, and the playground continuing a pre-filled beginning with the real model
    box = page.locator("[role=note]", has_text="이 실습실의 모델은 어떤 모델일까요?")
    expect(box).to_contain_text("작은 기본 모델")
    playground = cell_with(page, page.get_by_role("button", name="실행하기"))
    expect(playground.get_by_role("radio", name="그대로 이어 쓰기")).to_be_checked()
    expect(playground.locator("textarea").first).to_have_value("대한민국의 수도는")
    waiting = playground.locator(".widget-html-content", has_text="'실행하기'를 누르면 여기에 답이 나와요.")
    before = waiting.count()
    playground.get_by_role("button", name="실행하기").click()
    expect(playground.locator("[role=status]", has_text="답을 다 받았어요")).to_be_visible(timeout=300_000)
    expect(waiting).to_have_count(before - 1)
    page.screenshot(path=str(ARTIFACTS / "m1-1-playground.png"), full_page=True)

    # question 4: the reflection is prose in a text cell (double click, write, Shift+Enter)
    reflection = cell(page, "여기에 답을 써 주세요.")  # nbgrader's stub (graders/nbgrader_config.py)
    reflection.dblclick()
    reflection.locator(".cm-content").click()  # the editor is open; a click puts the cursor in it
    page.wait_for_function("document.activeElement && document.activeElement.closest('.cm-editor')")
    page.keyboard.press("Control+A")  # in the cell's editor: the stub goes
    page.keyboard.type(REFLECTION)
    page.keyboard.press("Shift+Enter")
    expect(page.locator(".jp-Notebook .jp-RenderedMarkdown", has_text=REFLECTION)).to_have_count(1)

    assert_no_english_errors(page, ".jp-Notebook .jp-OutputArea")
    expect(page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "m1-2-answered.png"), full_page=True)

    # save with Ctrl+S and submit with the toolbar's 제출하기
    page.keyboard.press("Control+s")
    saved = f"{lab.url}/user/{login}/api/contents/{NOTEBOOK}"
    for _ in range(60):  # the save reached the disk (submitting during a save would race it)
        cells_on_disk = page.request.get(saved).json()["content"]["cells"]
        if any(REFLECTION in "".join(c["source"]) for c in cells_on_disk):
            break
        page.wait_for_timeout(1000)
    else:
        raise AssertionError("Ctrl+S did not save the notebook")
    page.locator("button.dh-submit").click()
    dialog = page.get_by_role("dialog", name="제출할까요?")
    dialog.get_by_role("button", name="제출하기").click()
    receipt = page.get_by_role("dialog", name="제출했어요")
    expect(receipt).to_contain_text("접수 시각", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "m1-3-receipt.png"), full_page=True)
    receipt.get_by_role("button", name="확인").click()

    # the trainer's real pipeline
    lab.cli("course", "collect", COURSE, ASSIGNMENT)
    lab.cli("course", "autograde", COURSE, ASSIGNMENT)
    lab.cli("course", "feedback", COURSE, ASSIGNMENT)

    page.goto(f"{lab.url}/services/home/")
    card = page.locator("article.card", has_text="AI 첫걸음")
    expect(card.locator(".state")).to_have_text("채점 완료 · 피드백 있음", timeout=60_000)
    expect(card.locator(".score")).to_have_text("점수 6점 / 9점")  # every autograded point; 3 await the trainer
    assert_no_english_errors(page, "body")
    card.get_by_role("link", name="AI 첫걸음 피드백 보기").click()
    expect(page.locator("body")).to_contain_text("점수")
    assert_no_english_errors(page, "body")
    page.screenshot(path=str(ARTIFACTS / "m1-4-feedback.png"), full_page=True)
