"""Accessibility and language checks for Playwright pages: axe-core and the Hangul share of visible text.

axe-core comes from npm (package.json devDependencies, installed by `npm ci` in ./lab); it is evaluated
in the page through the DevTools protocol, so the page's Content-Security-Policy cannot block it.
"""

from __future__ import annotations

from pathlib import Path

AXE_JS = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 level A and AA rules (axe's own tags); best practices are left out unless asked for
WCAG21AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

_RUN_AXE = """async ([include, tags]) => {
    const result = await axe.run(include ? {include: [include]} : document,
                                 {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
    }));
}"""

# Letters of visible text nodes (plus the visible text of inputs: button values and placeholders),
# skipping names and identifiers marked translate="no" (HTML's own marker for them, e.g. the login
# name) and nodes inside `exclude` selectors (e.g. code editors, whose Python is not UI chrome).
_COUNT_LETTERS = r"""(exclude) => {
    const visible = el => el && el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
    const skipped = el => el.closest('[translate="no"]') || exclude.some(sel => el.closest(sel));
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const el = node.parentElement;
        if (!el || ['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName)) continue;
        if (visible(el) && !skipped(el)) texts.push(node.data);
    }
    for (const el of document.querySelectorAll('input, textarea')) {
        if (!visible(el) || skipped(el)) continue;
        if (['submit', 'button', 'reset'].includes(el.type)) texts.push(el.value);
        if (!el.value) texts.push(el.placeholder || '');
    }
    const text = texts.join(' ');
    return {
        hangul: (text.match(/[\u1100-\u11FF\u3130-\u318F\uAC00-\uD7A3]/g) || []).length,
        latin: (text.match(/[A-Za-z]/g) || []).length,
    };
}"""


def inject_axe(page) -> None:
    """Load axe-core into the page once (again after each navigation)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        if not AXE_JS.exists():
            raise FileNotFoundError(f"{AXE_JS} is missing: run `npm ci` in the repository root")
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical"), *,
                   include: str | None = None, tags: tuple[str, ...] = WCAG21AA) -> list[dict]:
    """axe-core's WCAG 2.1 AA violations on the page (or inside the CSS selector `include`) of the given impacts.

    Each violation: ``{"id", "impact", "help", "helpUrl", "nodes": [{"target", "html", "summary"}]}``.
    """
    inject_axe(page)
    violations = page.evaluate(_RUN_AXE, [include, list(tags)])
    return [v for v in violations if v["impact"] in impacts]


def describe(violations: list[dict]) -> str:
    """A readable assertion message: one line per rule, with the first offending elements."""
    lines = []
    for v in violations:
        targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:3])
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])}x: {targets})")
    return "\n".join(lines)


def letter_counts(page, exclude: tuple[str, ...] = ()) -> dict[str, int]:
    """Hangul and Latin letters in the page's visible text: ``{"hangul": n, "latin": m}``."""
    return page.evaluate(_COUNT_LETTERS, list(exclude))


def hangul_share(page, exclude: tuple[str, ...] = ()) -> float:
    """Share of Hangul among the visible letters (Hangul + Latin) of the page; 0.0 for a page without letters.

    A Hangul syllable counts as one letter, like a Latin letter, so English weighs more than its word count
    (a strict measure). Text inside ``[translate="no"]`` (names, identifiers) is not language and not
    counted. `exclude`: CSS selectors whose text is not counted, e.g. ``(".jp-InputArea-editor",)``.
    """
    counts = letter_counts(page, exclude)
    total = counts["hangul"] + counts["latin"]
    return counts["hangul"] / total if total else 0.0
