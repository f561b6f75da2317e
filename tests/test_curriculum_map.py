"""docs/curriculum.md maps each Google AI Essentials objective to the notebook cells that teach and check it.

The map is the table under ``## Google AI Essentials 목표 지도``. Each row names an objective, a notebook
(the assignment name), the cells that teach it and the items that check it. A cell is named by its id in
backticks (```m4-harms```) or by a heading of a markdown cell in «guillemets» («## 2. …», for notebooks
whose ids another helper may still change). A checking item must be graded: a test cell, a written answer,
or the heading of a question (``### 문제 …``) that has one. A stale reference — a cell renamed or removed —
fails here, so the map cannot drift from the notebooks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "curriculum.md"
MAP_HEADING = "## Google AI Essentials 목표 지도"
# The five courses of Google AI Essentials, as the map's first column names them.
COURSES = ("1. Introduction to AI", "2. Maximize Productivity With AI Tools", "3. Discover the Art of Prompt Engineering",
           "4. Use AI Responsibly", "5. Stay Ahead of the AI Curve")
CELL_ID = re.compile(r"`([a-z0-9][a-z0-9-]*)`")
HEADING = re.compile(r"«([^»]+)»")


@dataclass(frozen=True)
class Row:
    course: str
    objective: str
    assignment: str
    teaches: str
    checks: str
    line: int


def map_rows(text: str) -> list[Row]:
    """The table rows of the map section (header and separator rows left out)."""
    section = text.split(MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    start = text.index(MAP_HEADING)
    rows = []
    for offset, line in enumerate(section.splitlines()):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 5 or set(cells[0]) <= {"-", ":", " "} or cells[0] == "과정":
            continue
        rows.append(Row(*cells, line=text[:start].count("\n") + offset + 1))
    return rows


@cache
def notebook(course: str, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO / "assignments" / course / "source" / assignment / f"{assignment}.ipynb", as_version=4)


def references(field: str) -> list[tuple[str, str]]:
    """("id", …) and ("heading", …) references of one table cell, in order."""
    return [("id", m) for m in CELL_ID.findall(field)] + [("heading", m) for m in HEADING.findall(field)]


def find(nb: nbformat.NotebookNode, kind: str, ref: str) -> list:
    """The cells a reference names: by id, or markdown cells with a heading line that starts with it."""
    if kind == "id":
        return [c for c in nb.cells if c.get("id") == ref]
    return [c for c in nb.cells if c.cell_type == "markdown"
            and any(line.lstrip("#").strip().startswith(ref.lstrip("#").strip())
                    for line in c.source.splitlines() if line.startswith("#"))]


def graded_after(nb: nbformat.NotebookNode, cell) -> bool:
    """A question heading is graded if a graded cell follows it before the next question heading."""
    cells = nb.cells
    for later in cells[cells.index(cell) + 1:]:
        if later.metadata.get("nbgrader", {}).get("grade"):
            return True
        if later.cell_type == "markdown" and "### 문제" in later.source:
            return False
    return False


ROWS = map_rows(DOC.read_text(encoding="utf-8"))


def test_the_map_covers_every_course_and_module():
    assert len(ROWS) >= 20
    assert {row.course for row in ROWS} == set(COURSES), "the first column names one of the five courses"
    assert {row.assignment.strip("`") for row in ROWS} >= {
        "m1-first-steps", "m2-work-smarter", "m3-prompting", "m4-responsible-ai", "m5-keep-growing"}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"line{r.line}")
def test_every_cell_the_map_names_exists(row: Row):
    nb = notebook("ai-basics", row.assignment.strip("`"))
    teaches, checks = references(row.teaches), references(row.checks)
    assert teaches and checks, f"line {row.line}: name the cells that teach and check '{row.objective}'"
    for kind, ref in teaches:
        assert find(nb, kind, ref), f"line {row.line}: {row.assignment} has no cell {ref!r}"
    for kind, ref in checks:
        found = find(nb, kind, ref)
        assert found, f"line {row.line}: {row.assignment} has no item {ref!r}"
        cell = found[0]
        graded = cell.metadata.get("nbgrader", {}).get("grade") or (kind == "heading" and graded_after(nb, cell))
        assert graded, f"line {row.line}: {ref!r} checks nothing (not a graded cell or question)"


def test_a_stale_reference_is_caught():
    """The check itself: a renamed cell is not found, a heading with no graded cell checks nothing."""
    nb = notebook("ai-basics", "m4-responsible-ai")
    assert not find(nb, "id", "m4-no-such-cell")
    section = find(nb, "heading", "## 1.")[0]  # teaches; the question under it is the next cell
    question = find(nb, "heading", "### 문제 1.")[0]
    assert not graded_after(nb, section) and graded_after(nb, question)
    assert references("`m4-harms`, «## 2. 편향»") == [("id", "m4-harms"), ("heading", "## 2. 편향")]
