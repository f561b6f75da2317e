"""A learner's HTML never runs for the trainer (formgrader) or in feedback, on a real hub.

The learner submits, through the home, a notebook whose markdown answer, an extra markdown cell and a
code cell's outputs hold a ``<script>``, an ``<img onerror>``, an ``<iframe>`` and a ``javascript:`` link,
plus an SVG file with a script.  After ``donghaeng course`` collect → autograde → feedback, the trainer's formgrader
page of that submission (through the hub, as the course trainer) and the learner's feedback page (home
service) carry none of it as active content, the feedback has a sandboxing Content-Security-Policy, and
formgrader serves the raw file in a CSP sandbox.
"""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook

from hubclient import HubUser
from notebooks import solved
from test_learner_home import home_page, start_links

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
COURSE, ASSIGNMENT = "ai-basics", "m1-first-steps"
NOTEBOOK = f"{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
PAYLOAD = ('<script>window.xss_script = 1</script> <img src="x" onerror="window.xss_img = 1"> '
           '<iframe src="https://example.org/xss"></iframe> <a href="javascript:window.xss_link = 1">xss-link</a>')
SHOWN = f"from IPython.display import HTML, Markdown, display\ndisplay(HTML({PAYLOAD!r}))\ndisplay(Markdown({PAYLOAD!r}))"


class ActiveContent(HTMLParser):
    """Tags and attributes of a page that could run the learner's code or load a frame."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:  # the learner's handlers and links all say "xss" (formgrader has its own)
            if name.startswith("on") and "xss" in (value or ""):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.found.append(f"<{tag} {name}=javascript:>")
        if tag in ("iframe", "frame", "object", "embed", "form", "base"):
            self.found.append(f"<{tag}>")
        if tag == "script":
            self._in_script = True
            self.scripts.append(dict(attrs).get("src") or "")  # its address, then its text

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def active(page: str) -> tuple[list[str], list[str]]:
    parser = ActiveContent()
    parser.feed(page)
    return parser.found, parser.scripts


def put_file(user: HubUser, path: str, text: str) -> None:
    r = user.server("PUT", f"api/contents/{path}", json={"type": "file", "format": "text", "content": text})
    assert r.status_code in (200, 201), r.text


@pytest.fixture(scope="module")
def graded(home_lab):
    """A hostile learner's submission, collected, autograded and given feedback."""
    lab = home_lab
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    learner = HubUser.logged_in(lab, "hostile")
    learner.spawn()
    href, _ = start_links(home_page(learner))["AI 첫걸음 시작하기"]
    assert learner.http.get(href).status_code == 200  # the home's start button fetches the module
    released = nbformat.from_dict(learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"])
    source = nbformat.read(REPO / "assignments" / COURSE / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    nb = solved(released, source)
    written = next(c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution"))
    written.source = f"제 생각은 이래요. {PAYLOAD}"
    nb.cells += [new_markdown_cell(f"덧붙임 {PAYLOAD}"), new_code_cell(SHOWN)]
    put_file(learner, NOTEBOOK, nbformat.writes(nb))
    put_file(learner, f"{COURSE}/{ASSIGNMENT}/evil.svg",
             '<svg xmlns="http://www.w3.org/2000/svg"><script>window.xss_svg = 1</script></svg>')
    submitted = learner.server("POST", "donghaeng/api/submit", json={"path": NOTEBOOK, "request_id": str(uuid.uuid4())})
    assert submitted.status_code == 200, submitted.text
    lab.cli("course", "collect", COURSE, ASSIGNMENT)
    lab.cli("course", "autograde", COURSE, ASSIGNMENT)
    lab.cli("course", "feedback", COURSE, ASSIGNMENT)
    db = lab.settings.paths.course_dir(COURSE) / "gradebook.db"
    with Gradebook(f"sqlite:///{db}", course_id=COURSE) as gb:
        submission_id = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, learner.name).id
    return lab, learner, submission_id


def test_formgrader_shows_the_learners_html_inert(graded):
    lab, _learner, submission_id = graded
    trainer = HubUser.logged_in(lab, "trainer")
    page = trainer.http.get(f"/services/grader-{COURSE}/formgrader/submissions/{submission_id}/")
    assert page.status_code == 200, page.text[:500]
    assert "xss-link" in page.text and "덧붙임" in page.text  # the submission is shown...
    found, scripts = active(page.text)
    assert found == [], found  # ...with no handler, frame or javascript: link of the learner's
    assert scripts and not [s for s in scripts if "xss" in s], scripts  # formgrader's own scripts only

    raw = trainer.http.get(f"/services/grader-{COURSE}/formgrader/submissions/{submission_id}/evil.svg")
    assert raw.status_code == 200 and "sandbox" in raw.headers["Content-Security-Policy"].split("; ")


def test_feedback_shows_the_learners_html_inert_in_a_sandbox(graded):
    _lab, learner, _submission_id = graded
    page = learner.http.get(f"/services/home/feedback/{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}")
    assert page.status_code == 200, page.text[:500]
    policy = [part.strip() for part in page.headers["Content-Security-Policy"].split(";")]
    assert "sandbox" in policy and "default-src 'none'" in policy  # nothing runs even if something slipped
    assert "점수" in page.text and "xss-link" in page.text and "덧붙임" in page.text
    found, scripts = active(page.text)
    assert found == [] and not [s for s in scripts if "xss" in s], (found, scripts)
    assert "&lt;script&gt;window.xss_script" in page.text  # the learner's tags are shown as text
