"""Korean text check: the Korean that learners and trainers read is written the way the course promises.

Scope (everything a learner or trainer reads in Korean):

* **notebooks** — ``assignments/*/source/*/*.ipynb``: every markdown cell, and the comments and string
  literals of code cells that are not grade (test) cells. Grade cells belong to the graded questions and
  are left out on purpose: their text is part of what a question checks.
* **templates** — ``hub/templates``, ``donghaeng/services/home/templates``, ``donghaeng/services/dashboard/templates``,
  ``graders/templates``: text between tags and the ``title``/``aria-label``/``placeholder``/``alt``
  attributes (Jinja expressions stand for a word; Jinja statements and comments are dropped).
* **glossary** — ``donghaeng/data/glossary.toml``: every term's plain explanation and example.
* **message tables** — module-level constants in ``donghaeng/**/*.py`` named ``MSG_*``, ``REASONS`` or
  ``*MESSAGE``/``*MESSAGES`` (strings, or dicts/lists/tuples of strings).

Checks:

1. **split particles** — a particle (조사, kiwipiepy tag ``J*``), the copula (``VCP``: 이에요/예요/이라는)
   or an ending (``E*``) separated by a space from the bold, code, quoted or Latin word it belongs to:
   ``**저장하기** 를``, ```tokens` 를``, ``"확인" 을``, ``Shift + Enter 를``. A regex finds the
   candidates; kiwipiepy decides from the part-of-speech of the word after the space, so ``**제출** 버튼``
   (a noun) and ``Enter 키`` pass. The one-syllable words that kiwipiepy can also read as a word of their
   own (이 "this", 가 "go", 와 "come", 과 "lesson") count as particles right after bold, code or quotes.
2. **bold that does not show** — CommonMark (and JupyterLab's renderer) does not close ``**…**`` when the
   bold text ends in punctuation and a letter follows (``**언어 모델(LLM)**이``): learners would see the
   stars. Checked by rendering each markdown cell with markdown-it-py.
3. **polite endings** — every sentence that ends in a verb ending (kiwipiepy ``EF``) uses 해요체
   (…요, …죠): no 합니다/습니다/합시다 and no 반말 or plain -다/-해/-자. Sentences that end in a noun
   (headings, 개조식 bullets, table cells, question stems like "가장 가까운 것은?") are fine.
   **Sample texts are not checked for endings** when they are clearly marked: inside quotation marks
   (``"…"``, ``'…'``, ``“…”``, ``‘…’``, ``「…」``, ``『…』``), in a blockquote line (``> 공문 예시``), in a
   fenced code block or inline code, in a markdown solution cell (a model answer in the learner's voice),
   or, in code cells, in any string that is not printed (sample data handed to a widget).
   In code cells only comments and ``print(...)`` arguments are addressed to the learner.

Spacing (kiwipiepy ``Kiwi.space()``) is not checked: on this text it rewrites correct lines
(``저장(Ctrl + S)하고``, ``10~20초쯤``, product names, code) far more often than it finds a real error, so
its findings cannot be kept near zero; the split-particle check covers the spacing error that matters here.

Every finding prints ``file:cell N:line M`` (or ``file:line M``) and the text, so a writer can fix it.
"""

from __future__ import annotations

import ast
import html
import io
import json
import re
import tokenize
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

kiwipiepy = pytest.importorskip("kiwipiepy")
from markdown_it import MarkdownIt  # noqa: E402  (rich's dependency, always installed)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(REPO.glob("assignments/*/source/*/*.ipynb"))
TEMPLATE_DIRS = ["hub/templates", "donghaeng/services/home/templates", "donghaeng/services/dashboard/templates", "graders/templates"]
MESSAGE_NAME = re.compile(r"^(MSG_[A-Z0-9_]+|REASONS|[A-Z0-9_]*MESSAGES?)$")
HANGUL = re.compile(r"[가-힣]")

# Findings in files this check does not own yet, each with who fixes it. A stale entry fails the test,
# so the list only shrinks. Keys are (path, check, text) with the text stripped.
KNOWN: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True)
class Text:
    """One line of Korean text and where a writer finds it."""

    where: str
    text: str
    kind: str  # "markdown", "answer" (markdown solution cell), "code", "printed", "template", "message"


@dataclass(frozen=True)
class Finding:
    where: str
    check: str
    text: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.check}] {self.detail}\n        {self.text.strip()}"


@cache
def kiwi() -> kiwipiepy.Kiwi:
    return kiwipiepy.Kiwi()


# --------------------------------------------------------------------------------------------- sources


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def markdown_texts(source: str, where: str, kind: str = "markdown") -> Iterator[Text]:
    fenced = False
    for n, line in enumerate(source.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced and HANGUL.search(line):
            yield Text(f"{where}:line {n}", line, kind)


def _print_lines(code: str) -> set[int]:
    """Line numbers of string literals that are arguments of ``print(...)``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            for arg in ast.walk(node):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    lines.update(range(arg.lineno, (arg.end_lineno or arg.lineno) + 1))
    return lines


def _string_body(token: str) -> str:
    body = re.sub(r"^[rRbBuUfF]{0,2}", "", token)
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    return body[len(quote):-len(quote)].replace('\\"', '"').replace("\\'", "'").replace("\\n", "\n")


def code_texts(code: str, where: str) -> Iterator[Text]:
    printed = _print_lines(code)
    hidden = re.search(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", code, re.S)
    if hidden:
        code = code[: hidden.start()] + "\n" * hidden.group().count("\n") + code[hidden.end():]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            pieces = [(tok.start[0], tok.string.lstrip("# "))]
            kind = "printed"  # comments are read by the learner
        elif tok.type == tokenize.STRING:
            pieces = [(tok.start[0] + i, line) for i, line in enumerate(_string_body(tok.string).splitlines())]
            kind = "printed" if tok.start[0] in printed else "code"
        else:
            continue
        for n, line in pieces:
            if HANGUL.search(line):
                yield Text(f"{where}:line {n}", line, kind)


def notebook_texts(path: Path) -> Iterator[Text]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader", {})
        where = f"{_rel(path)}:cell {i}"
        if cell["cell_type"] == "markdown":
            yield from markdown_texts(source, where, "answer" if meta.get("solution") else "markdown")
        elif cell["cell_type"] == "code" and not meta.get("grade"):
            yield from code_texts(source, where)


INLINE_TAGS = "a|abbr|b|code|em|i|kbd|label|small|span|strong|time|output|mark|u"
ATTRIBUTE = re.compile(r"""\b(?:title|aria-label|placeholder|alt)\s*=\s*"([^"{}]*[가-힣][^"{}]*)\"""")


def template_line(line: str) -> str:
    """A template line as plain text with markdown-like markers (``**`` for bold, backticks for code)."""
    line = re.sub(r"\{#.*?#\}|\{%.*?%\}", "", line)
    line = re.sub(r"\{\{.*?\}\}", "`값`", line)
    line = re.sub(r"</?(?:strong|b)\b[^>]*>", "**", line)
    line = re.sub(r"</?(?:code|kbd)\b[^>]*>", "`", line)
    line = re.sub(rf"</?(?:{INLINE_TAGS})\b[^>]*>", "", line)
    line = re.sub(r"<[^>]*>", " | ", line)
    return html.unescape(line)


def template_texts(path: Path) -> Iterator[Text]:
    in_script = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if re.search(r"<(script|style)\b", line):
            in_script = not re.search(r"</(script|style)>", line)
            continue
        if in_script:
            in_script = not re.search(r"</(script|style)>", line)
            continue
        for value in ATTRIBUTE.findall(line):
            yield Text(f"{_rel(path)}:line {n}", value, "template")
        text = template_line(ATTRIBUTE.sub("", line))
        if HANGUL.search(text):
            yield Text(f"{_rel(path)}:line {n}", text, "template")


def _strings(node: ast.AST) -> Iterator[ast.Constant]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub


def message_texts(path: Path) -> Iterator[Text]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not any(MESSAGE_NAME.match(name) for name in names) or node.value is None:
            continue
        for const in _strings(node.value):
            # one message may be several adjacent literals: report it as one text, at its first line
            for line in const.value.splitlines():
                if HANGUL.search(line):
                    yield Text(f"{_rel(path)}:line {const.lineno} ({names[0]})", line, "message")


def glossary_texts(path: Path = REPO / "donghaeng" / "data" / "glossary.toml") -> Iterator[Text]:
    for i, term in enumerate(tomllib.loads(path.read_text(encoding="utf-8"))["term"], 1):
        for key in ("plain", "example"):
            if term.get(key):
                yield Text(f"{_rel(path)}:term {i} ({term['word']}, {key})", term[key], "message")


def all_texts() -> Iterator[Text]:
    for path in NOTEBOOKS:
        yield from notebook_texts(path)
    yield from glossary_texts()
    for folder in TEMPLATE_DIRS:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in {".html", ".j2", ".jinja", ".tpl"} and path.is_file():
                yield from template_texts(path)
    for path in sorted((REPO / "donghaeng").rglob("*.py")):
        yield from message_texts(path)


# ---------------------------------------------------------------------------------------------- checks

# A closing markup (bold, code, quote, Jinja value) or a Latin/digit word, then a space, then Hangul.
SPLIT_CANDIDATE = re.compile(
    r"""(?:\*\*(?P<bold>[^*\n]+?)\*\*|`(?P<code>[^`\n]+)`|"(?P<dq>[^"\n]+)"|'(?P<sq>[^'\n]+)'|“(?P<cq>[^”\n]+)”"""
    r"""|‘(?P<csq>[^’\n]+)’|「(?P<kq>[^」\n]+)」|『(?P<kdq>[^』\n]+)』|(?<![\w*`'"])(?P<latin>[A-Za-z0-9#][A-Za-z0-9+./#-]*|[^\s*`'"]*[)\]}]))"""
    r"""[ \t]+(?P<word>[가-힣]+)(?=(?P<rest>[^\n]{0,30}))"""
)
PLACEHOLDERS = ("사과", "책")  # stand-ins for a marked word that does not end in Hangul (vowel / consonant)


def _attaches(head: str, word: str, rest: str, joined: bool = False) -> str | None:
    """The tag of *word*'s first morpheme if it is a particle, the copula or an ending, else None.

    *word* follows *head* after a space, or with no space when *joined*."""
    gap = "" if joined else " "
    sentence = f"{head}{gap}{word}{rest}"
    start = len(head) + len(gap)
    for token in kiwi().tokenize(sentence):
        if token.start >= start or token.end > start:
            tag = token.tag
            if token.start == start and (tag.startswith("J") or tag == "VCP" or tag.startswith("E")):
                return f"{token.form}/{tag}"
            return None
    return None


AMBIGUOUS = {"이", "가", "와", "과"}  # particles kiwipiepy may read as a determiner or verb when spaced


def split_particles(text: Text) -> Iterator[Finding]:
    line = text.text
    for m in SPLIT_CANDIDATE.finditer(line):
        if m.group("latin") and text.kind == "code":
            continue  # sample data: an address or number stays apart from its particle for the masking tools
        inner = next(g for g in (m.group(k) for k in ("bold", "code", "dq", "sq", "cq", "csq", "kq", "kdq", "latin")) if g)
        tail = re.search(r"[가-힣]+$", inner)
        heads = [tail.group()] if tail else list(PLACEHOLDERS)
        for head in heads:
            tag = _attaches(head, m.group("word"), m.group("rest"))
            if not tag and not m.group("latin") and m.group("word") in AMBIGUOUS and m.group("rest")[:1] in {" ", ""}:
                tag = _attaches(head, m.group("word"), m.group("rest"), joined=True)  # read joined: 책이, 사과와
            if tag:
                shown = m.group()
                yield Finding(text.where, "split particle", line, f"'{shown}': {tag} must touch the word before it")
                break


MD = MarkdownIt("commonmark")


def unrendered_bold(path: Path) -> Iterator[Finding]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for n, line in enumerate(source.splitlines(), 1):
            if "**" not in line or line.lstrip().startswith(("```", "    ")):
                continue
            rendered = re.sub(r"<code>.*?</code>", "", MD.renderInline(line))
            if "**" in rendered:
                yield Finding(f"{_rel(path)}:cell {i}:line {n}", "bold not shown", line,
                              "the ** stays visible: bold text that ends in punctuation needs a space or "
                              "punctuation after it (move the punctuation out of the bold)")


QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|“[^”]*”|‘[^’]*’|「[^」]*」|『[^』]*』|`[^`]*`")
POLITE_EF = re.compile(r"(요|죠)$")
FORMAL_EF = re.compile(r"(니다|니까|시다|시오)$")
PLAIN_EC = {"나", "니", "냐", "지", "어", "아", "야", "자", "네", "군", "라", "다"}  # not 게 (…더 길게.)
LABEL_EF = {"음", "ᆷ", "기", "ᆯ지", "ᆫ지", "는지"}
VERBAL = ("V", "EP", "XSV", "XSA")  # what comes right before a real sentence ending


def _prose(text: Text) -> str | None:
    """The part of a line that addresses the reader (no quotes, code, blockquotes, markup), or None."""
    line = text.text
    if text.kind in {"code", "answer"}:
        return None
    if text.kind in {"markdown"} and line.lstrip().startswith(">"):
        return None
    line = QUOTED.sub(" 그것 ", line)
    line = re.sub(r"\]\([^)]*\)", "]", line)  # link targets
    line = re.sub(r"[*#>\[\]]", " ", line)
    return line


def endings(text: Text) -> Iterator[Finding]:
    prose = _prose(text)
    if not prose or not HANGUL.search(prose):
        return
    cells = prose.split("|")
    for cell in cells:
        if not HANGUL.search(cell) or (len(cells) > 1 and not re.search(r"[.?!]\s*$", cell)):
            continue  # a table cell is a label unless it ends like a sentence
        for sent in kiwi().split_into_sents(cell, return_tokens=True):
            words = [t for t in sent.tokens if not t.tag.startswith(("S", "W"))]
            final_mark = bool(sent.tokens) and sent.tokens[-1].tag == "SF"
            if len(words) < 2 or POLITE_EF.search(words[-1].form):
                continue
            if not (words[-1].tag == "EF" or (words[-1].tag == "EC" and final_mark and words[-1].form in PLAIN_EC)):
                continue  # kiwipiepy tags a sentence-final 반말 ending before ?/. (않았나?) as EC
            if words[-1].form in LABEL_EF or not words[-2].tag.startswith(VERBAL):
                continue  # a label (없음, 해결함, 얼마나 자주 할지) or a mis-tagged noun (도구 다, 32자)
            style = "formal 합니다체" if FORMAL_EF.search(words[-1].form) else "plain/반말"
            yield Finding(text.where, "ending", text.text,
                          f"'{sent.text.strip()}' ends in {style} ('{words[-1].form}'): write 해요체 (…요)")


def findings(texts: Iterable[Text]) -> list[Finding]:
    out: list[Finding] = []
    for text in texts:
        out.extend(split_particles(text))
        out.extend(endings(text))
    return out


def _report(found: list[Finding]) -> str:
    return f"{len(found)} Korean text finding(s):\n" + "\n".join(str(f) for f in found)


def _unknown(found: list[Finding]) -> tuple[list[Finding], set[tuple[str, str, str]]]:
    seen: set[tuple[str, str, str]] = set()
    new: list[Finding] = []
    for f in found:
        key = (f.where.split(":")[0], f.check, f.text.strip())
        if key in KNOWN:
            seen.add(key)
        else:
            new.append(f)
    return new, set(KNOWN) - seen


# ----------------------------------------------------------------------------------------------- tests


def test_the_check_finds_known_bad_korean():
    bad = [
        Text("bad.md:line 1", "위젯의 답은 **저장하기** 를 눌러야 제출물에 들어가요.", "markdown"),
        Text("bad.md:line 2", "셀에 `tokens` 를 쓰고 \"확인\" 을 눌러요.", "markdown"),
        Text("bad.md:line 3", "**토큰(token)** 이라는 조각이에요. Shift + Enter 를 눌러요.", "markdown"),
        Text("bad.md:line 7", "`손님 후기:` 와 `답장:` 이 짝을 이뤄요.", "markdown"),
        Text("bad.md:line 4", "보고서를 제출합니다.", "markdown"),
        Text("bad.md:line 5", "이 셀은 실행만 해.", "printed"),
        Text("bad.html:line 6", template_line("<p><strong>저장</strong> 을 누르면 끝나요.</p>"), "template"),
    ]
    found = findings(bad)
    by_line: dict[str, list[str]] = {}
    for f in found:
        by_line.setdefault(f.where, []).append(f.check)
    assert by_line == {
        "bad.md:line 1": ["split particle"],
        "bad.md:line 2": ["split particle", "split particle"],
        "bad.md:line 3": ["split particle", "split particle"],
        "bad.md:line 4": ["ending"],
        "bad.md:line 5": ["ending"],
        "bad.md:line 7": ["split particle", "split particle"],
        "bad.html:line 6": ["split particle"],
    }, _report(found)
    assert "bad.md:line 1: [split particle] '**저장하기** 를'" in _report(found)


def test_the_check_leaves_good_korean_alone():
    good = [
        Text("good.md:line 1", "위젯의 답은 **저장하기**를 눌러야 제출물에 들어가요. **제출** 버튼도 있어요.", "markdown"),
        Text("good.md:line 2", "**Enter** 키를 누르고 `print` 함수를 써요. \"저장했어요\"라는 글이 보여요.", "markdown"),
        Text("good.md:line 3", "> 다음 주 월요일까지 보고서를 제출하시기 바랍니다.", "markdown"),
        Text("good.md:line 4", "공문 예시는 \"검토 후 회신하여 주시기 바랍니다.\"처럼 끝나요.", "markdown"),
        Text("good.md:line 5", "- 회의 내용을 짧게 **요약**하기", "markdown"),
        Text("good.py:line 6", "회의에서 예산을 확정했다.", "code"),
        Text("good.md:line 7", "다음 중 언어 모델이 하는 일에 가장 가까운 것은?", "markdown"),
    ]
    assert findings(good) == []


def test_bold_that_does_not_render_is_found(tmp_path):
    nb = tmp_path / "bad.ipynb"
    nb.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "**언어 모델(LLM)**이 무엇인지 알아요.\n**토큰**이에요."},
    ]}), encoding="utf-8")
    found = list(unrendered_bold(nb))
    assert [f.where.split(":", 1)[1] for f in found] == ["cell 0:line 1"]


def test_learner_and_trainer_korean_has_no_split_particles_and_polite_endings():
    texts = list(all_texts())
    assert len({t.where.split(":")[0] for t in texts}) >= len(NOTEBOOKS) + 10, "the scan found too few files"
    found = findings(texts)
    for path in NOTEBOOKS:
        found.extend(unrendered_bold(path))
    new, stale = _unknown(found)
    assert not stale, f"these KNOWN findings are fixed now; remove them from KNOWN: {sorted(stale)}"
    if new:
        print(_report(new))
    assert not new, _report(new)
