"""Every course notebook links the glossary near the top, and the words the course uses are defined."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from donghaeng.toolkit.glossary import COURSE_TERMS, NOTEBOOK_LINE, NOTEBOOK_URL, load_terms, render_page

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(REPO.glob("assignments/*/source/*/*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_course_notebook_links_the_glossary_near_the_top(path: Path):
    intro = nbformat.read(path, as_version=4).cells[0]
    assert intro.cell_type == "markdown"
    paragraphs = intro.source.split("\n\n")
    # the title, the time and points line, then the glossary line, in the same words everywhere
    assert paragraphs[2] == NOTEBOOK_LINE, paragraphs[:3]
    assert f"]({NOTEBOOK_URL})" in NOTEBOOK_LINE and NOTEBOOK_URL == "/hub/user-redirect/donghaeng/glossary"


def test_the_words_the_course_uses_are_in_the_glossary_in_plain_korean():
    terms = {t.word: t for t in load_terms()}
    missing = [w for w in COURSE_TERMS if w not in terms]
    assert not missing, f"add these words to donghaeng/data/glossary.toml: {missing}"
    for word in COURSE_TERMS:
        plain = terms[word].plain
        assert plain.endswith("요.") and len(plain) >= 20, (word, plain)
        assert len(re.findall(r"[가-힣]", plain)) > len(re.findall(r"[A-Za-z]", plain)), (word, plain)
    page = render_page(tuple(terms.values()))
    for word in COURSE_TERMS:
        assert f'id="{terms[word].anchor}"' in page


def test_widget_jargon_is_explained_with_the_plain_word_the_notebooks_use():
    terms = {t.word: t for t in load_terms()}
    assert "실습 도구" in terms["위젯"].plain
    assert terms["실습 도구"].english == "widget"
