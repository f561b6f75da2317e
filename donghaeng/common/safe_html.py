"""Learners' HTML made inert before anyone sees it: the formgrader (trainers, on the hub's origin) and feedback.

A submission's markdown cells and outputs are the learner's HTML.  nbconvert sanitizes them when
``HTMLExporter.sanitize_html`` is on, through its ``clean_html`` filter, but that filter escapes every tag
outside bleach's short default list (a sanitized page shows ``<p>`` and ``<h1>`` as text), and nbgrader's
formgrade and feedback templates render the graded markdown cells without it.  graders/nbgrader_config.py
turns ``sanitize_html`` on and registers the two filters below in place of nbconvert's:

* :func:`clean_html` keeps what Markdown produces (paragraphs, headings, lists, tables, code, images,
  links) and escapes everything else, so ``<script>``, ``<iframe>``, ``<style>`` or ``<form>`` show as
  text; no event handler (``onerror=…``) or ``style`` attribute is kept, links only go to ``http(s)``,
  ``mailto`` or a relative address, and images come only from ``data:image/…``, ``http(s)`` or a
  relative address;
* :func:`strip_files_prefix` is nbconvert's filter of the same name, which every HTML template applies
  right after ``markdown2html``; it cleans the result too, so each template's markdown (nbgrader's
  included) is sanitized without copying those templates.
"""

from __future__ import annotations

import re

import bleach
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.strings import strip_files_prefix as _nbconvert_strip_files_prefix

__all__ = ["FeedbackExporter", "clean_html", "strip_files_prefix"]

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
    "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
})
_LINK = re.compile(r"(?:https?:|mailto:|#|[^:]*$)", re.IGNORECASE)
_IMAGE = re.compile(r"(?:data:image/|https?:|[^:]*$)", re.IGNORECASE)


def _attribute(tag: str, name: str, value: str) -> bool:
    """Attributes kept: layout and anchors only, never a handler, a style or a script address."""
    if name in ("class", "id", "title", "align"):
        return True
    if tag == "a":
        return name == "name" or (name == "href" and bool(_LINK.match(value.strip())))
    if tag == "img":
        return name in ("alt", "width", "height") or (name == "src" and bool(_IMAGE.match(value.strip())))
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan")
    return tag == "ol" and name in ("start", "type")


_CLEANER = bleach.Cleaner(tags=TAGS, attributes=_attribute, protocols={"http", "https", "mailto", "data"})


def clean_html(element: str | bytes) -> str:
    """*element* with only inert HTML left (nbconvert's ``clean_html`` filter, with Markdown's tags kept)."""
    return _CLEANER.clean(element.decode() if isinstance(element, bytes) else str(element))


def strip_files_prefix(text: str) -> str:
    """nbconvert's ``strip_files_prefix`` on rendered markdown, then :func:`clean_html`."""
    return clean_html(_nbconvert_strip_files_prefix(text))


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback exporter under a name of its own (``GenerateFeedback.exporter_class``).

    Formgrader's exporter is a plain ``HTMLExporter`` that reads the same nbgrader config, so settings
    meant for the feedback page only (its template) go to this class; ``HTMLExporter``'s (sanitizing)
    reach both.
    """
