"""Tokenizer explorer: see how the language model cuts a sentence into tokens.

The learner types a sentence; the model's real tokens appear as coloured chips (hover for the
token number), with "토큰 N개 · 글자 M자".  A "한국어와 영어 비교" mode puts the same sentence in
Korean and English side by side.  Only the tokenizer is loaded (on the first input), never the
model weights.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

import ipywidgets as widgets

from donghaeng.toolkit.widgets.common import LearnerWidget

from donghaeng.toolkit.model_client import ModelClient, ModelError, Token, byte_value

__all__ = ["TokenizerExplorer", "render_chips", "tokenizer_explorer", "visible_text"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # no stray stderr lines in a learner's cell

PLACEHOLDER = "여기에 문장을 써 보세요. 예: 회의 자료는 메일로 보내 주세요."
DEFAULT_KO = "회의 자료는 메일로 보내 주세요."
DEFAULT_EN = "Please send the meeting materials by email."
MAX_CHIPS = 2000

MSG_LOADING = "토크나이저를 준비하는 중이에요… 처음 한 번은 10~20초쯤 걸려요."
MSG_FAILED = "토큰으로 나누지 못했어요. 잠시 뒤 다시 해 보고, 계속 안 되면 강사님께 알려 주세요."
MSG_EMPTY = "위 칸에 문장을 써 넣으면 토큰이 여기에 보여요."
MSG_SAMPLE = "문제 문장 넣기"

# Pastel backgrounds with dark text (contrast well above WCAG AA).
PALETTE = ["#fde2e4", "#e2ece9", "#dbe7f9", "#fff1c1", "#e8def8", "#d7f2e3", "#fbe3d0", "#e0e0e0"]

_SPOKEN = {" ": "띄어쓰기", "\n": "줄바꿈", "\t": "탭"}


def visible_text(text: str) -> str:
    """Make whitespace and control characters visible: ``" "`` -> ``␣``, newline -> ``↵``."""
    out = []
    for ch in text:
        if ch == " ":
            out.append("␣")
        elif ch == "\n":
            out.append("↵")
        elif ch == "\t":
            out.append("⇥")
        elif ch == "\r":
            out.append("␍")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _spoken(text: str) -> str:
    """What a screen reader should say for a token."""
    if text and all(c in _SPOKEN for c in text):
        return " ".join(_SPOKEN[c] for c in text)
    if text.startswith(" ") and text.strip():
        return f"띄어쓰기 {text.strip()}"
    return text


def _byte_notes(tokens: Sequence[Token]) -> dict[int, str]:
    """For byte-fallback tokens: which character each byte belongs to (index -> Korean note)."""
    notes: dict[int, str] = {}
    i = 0
    while i < len(tokens):
        if byte_value(tokens[i].text) is None:
            i += 1
            continue
        j = i
        while j < len(tokens) and byte_value(tokens[j].text) is not None:
            j += 1
        data = bytes(byte_value(t.text) for t in tokens[i:j])  # type: ignore[misc]
        k = 0
        while k < len(data):
            lead = data[k]
            size = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
            chunk = data[k : k + size]
            char = visible_text(chunk.decode("utf-8", errors="replace"))
            for n in range(len(chunk)):
                notes[i + k + n] = f"바이트 조각: 글자 '{char}'를 이루는 {len(chunk)}바이트 중 {n + 1}번째"
            k += max(1, len(chunk))
        i = j
    return notes


def render_chips(tokens: Sequence[Token], *, limit: int = MAX_CHIPS) -> str:
    """Tokens as coloured inline chips (HTML).  Each chip's tooltip gives the token number."""
    notes = _byte_notes(tokens)
    parts = []
    for n, tok in enumerate(tokens[:limit]):
        bg = PALETTE[n % len(PALETTE)]
        byte = byte_value(tok.text)
        if byte is not None:
            label = f"{byte:02X}"
            title = f"토큰 번호 {tok.id} · {notes.get(n, '바이트 조각')}"
            spoken = f"바이트 {label}"
            style = f"background:{bg}; border:1px dashed #555; font-size:0.8em"
        else:
            label = visible_text(tok.text) or "∅"
            title = f"토큰 번호 {tok.id}"
            spoken = _spoken(tok.text)
            style = f"background:{bg}; border:1px solid #c8c8c8"
        parts.append(
            f'<span class="dh-token" role="listitem" title="{html.escape(title)}" '
            f'aria-label="{html.escape(f"{n + 1}번째 토큰: {spoken}, 번호 {tok.id}")}" '
            f'style="{style}; color:#1a1a1a; display:inline-block; margin:2px; padding:1px 5px; '
            f'border-radius:4px; white-space:pre; font-family:monospace, sans-serif">'
            f"{html.escape(label)}</span>"
        )
        if "\n" in tok.text:
            parts.append("<br>")
    more = ""
    if len(tokens) > limit:
        more = f'<div style="color:#555">토큰이 많아서 처음 {limit:,}개만 보여 줘요.</div>'
    return (
        f'<div role="list" aria-label="토큰 {len(tokens)}개" style="line-height:1.9">{"".join(parts)}</div>{more}'
    )


def count_text(tokens: Sequence[Token], text: str) -> str:
    return f"토큰 {len(tokens):,}개 · 글자 {len(text):,}자"


def compare_explanation(ko_tokens: int, en_tokens: int) -> str:
    """One plain Korean line about what the two counts mean."""
    if not ko_tokens or not en_tokens:
        return "두 칸에 같은 뜻의 문장을 써 넣으면 토큰 수를 비교해 드려요."
    diff = ko_tokens - en_tokens
    if diff > 0:
        return (
            f"같은 뜻인데 한국어가 토큰을 {diff}개 더 써요. 토큰이 많으면 모델이 읽을 양이 늘어서 "
            "더 느리고, 쓴 만큼 돈을 내는 서비스라면 비용도 늘어요."
        )
    if diff < 0:
        return (
            f"이번에는 한국어가 토큰을 {-diff}개 덜 써요. 이 모델은 한국어 낱말도 많이 알아서 "
            "한국어 글자 여러 개를 한 토큰으로 묶어 읽어요."
        )
    return "두 문장의 토큰 수가 같아요. 글자 수는 달라도 모델이 읽는 양은 비슷해요."




class TokenizerExplorer(LearnerWidget):
    """See :func:`tokenizer_explorer`."""

    label = "토큰 살펴보기"

    def __init__(self, client: ModelClient | None = None, sample: str | None = None) -> None:
        self._client = client
        self.message = ""
        self.tokens: list[Token] = []

        self.text = widgets.Textarea(
            value="",
            placeholder=PLACEHOLDER,
            description="문장",
            tooltip="토큰으로 나눠 볼 문장을 써 넣으세요",
            continuous_update=True,
            layout=widgets.Layout(width="95%", height="5em"),
        )
        self.count = widgets.HTML(value="")
        self.chips = widgets.HTML(value=f'<div style="color:#555">{html.escape(MSG_EMPTY)}</div>')
        self.status = widgets.HTML(value="")

        self.compare_toggle = widgets.ToggleButton(
            value=False,
            description="한국어와 영어 비교",
            tooltip="같은 문장을 한국어와 영어로 나눠 토큰 수를 비교해요",
            icon="columns",
        )
        self.ko_text = widgets.Text(value=DEFAULT_KO, description="한국어", continuous_update=True,
                                    layout=widgets.Layout(width="95%"))
        self.en_text = widgets.Text(value=DEFAULT_EN, description="영어", continuous_update=True,
                                    layout=widgets.Layout(width="95%"))
        self.ko_count, self.en_count = widgets.HTML(), widgets.HTML()
        self.ko_chips, self.en_chips = widgets.HTML(), widgets.HTML()
        self.explanation = widgets.HTML()
        column = widgets.Layout(width="50%", padding="0 0.5em 0 0")
        self.compare_box = widgets.VBox(
            children=[
                widgets.HBox(
                    children=[
                        widgets.VBox(children=[self.ko_text, self.ko_count, self.ko_chips], layout=column),
                        widgets.VBox(children=[self.en_text, self.en_count, self.en_chips], layout=column),
                    ]
                ),
                self.explanation,
            ],
            layout=widgets.Layout(display="none", border="1px solid #d0d7de", padding="0.4em", margin="0.4em 0"),
        )

        self.text.observe(lambda _change: self.update(), names="value")
        self.ko_text.observe(lambda _change: self.update_compare(), names="value")
        self.en_text.observe(lambda _change: self.update_compare(), names="value")
        self.compare_toggle.observe(self._toggle_compare, names="value")

        top: list[widgets.Widget] = [self.text]
        if sample:  # a button puts an exercise's sentence in the box: nothing to type, nothing mistyped
            self.sample_button = widgets.Button(description=MSG_SAMPLE, tooltip=sample, icon="paste")
            self.sample_button.on_click(lambda _button: setattr(self.text, "value", sample))
            top.append(self.sample_button)
        super().__init__(
            children=[*top, self.count, self.chips, self.status, self.compare_toggle, self.compare_box],
            layout=widgets.Layout(border="1px solid #d0d7de", padding="0.6em", margin="0.5em 0"),
        )

    # -- helpers --------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[Token] | None:
        """Tokens, or None after showing a Korean message (never raises)."""
        if not text:
            return []
        try:
            client = self.client
            if getattr(client, "tokenizer_loaded", True) is False:
                self._show(MSG_LOADING)
            tokens = client.tokenize(text)
        except ModelError as exc:
            self._show(str(exc), "error")
            return None
        except Exception:  # a widget callback must never show a learner a traceback
            log.exception("tokenizing failed")
            self._show(MSG_FAILED, "error")
            return None
        if self.message:
            self._show("")
        return tokens

    # -- actions --------------------------------------------------------------------------

    def update(self) -> list[Token] | None:
        """Re-tokenize the main text field and redraw its chips and count."""
        text = self.text.value
        tokens = self._tokenize(text)
        if tokens is None:
            return None
        if not text:
            self.count.value = ""
            self.chips.value = f'<div style="color:#555">{html.escape(MSG_EMPTY)}</div>'
        else:
            self.count.value = f'<div role="status"><b>{html.escape(count_text(tokens, text))}</b></div>'
            self.chips.value = render_chips(tokens)
        self.tokens = tokens
        return tokens

    def update_compare(self) -> None:
        """Re-tokenize both comparison fields."""
        if not self.compare_toggle.value:
            return
        counts = []
        for field, count, chips in ((self.ko_text, self.ko_count, self.ko_chips), (self.en_text, self.en_count, self.en_chips)):
            tokens = self._tokenize(field.value)
            if tokens is None:
                return
            count.value = f"<b>{html.escape(count_text(tokens, field.value))}</b>"
            chips.value = render_chips(tokens)
            counts.append(len(tokens))
        self.explanation.value = f'<div role="status" style="margin-top:0.4em">{html.escape(compare_explanation(*counts))}</div>'

    def _toggle_compare(self, change) -> None:
        self.compare_box.layout.display = "" if change["new"] else "none"
        if change["new"]:
            self.update_compare()


def tokenizer_explorer(client: ModelClient | None = None, sample: str | None = None) -> widgets.Widget:
    """A text box whose sentence is shown as the model's real tokens, plus a Korean/English
    comparison.  *client* defaults to :func:`donghaeng.toolkit.model_client.get_client`; with *sample*, a
    "문제 문장 넣기" button puts that sentence in the box (tokenized only when pressed)."""
    return TokenizerExplorer(client, sample)
