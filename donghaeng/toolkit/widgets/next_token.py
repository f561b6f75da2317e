"""Next-token viewer: what the model thinks comes next, as a bar chart of probabilities.

The learner writes a prompt, presses "다음 토큰 보기" and sees the top-k candidate tokens with
their probabilities.  "가장 높은 것 붙이기" appends the most likely token, "뽑아서 붙이기" draws one
by the shown probabilities: pressing either again and again is generation, one step at a time.
The temperature slider re-shapes the distribution and the chart follows it.  The model loads on
the first button press, not before.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import random
import re
import warnings

import ipywidgets as widgets

from donghaeng.toolkit.widgets.common import LearnerWidget, number_field

from donghaeng.toolkit.model_client import ModelClient, ModelError, TokenProb, byte_value
from donghaeng.toolkit.widgets.tokens import visible_text

__all__ = ["NextTokenViewer", "next_token_viewer"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # no stray stderr lines in a learner's cell

DEFAULT_PROMPT = "회의 자료는 메일로"

MSG_WORKING = "계산하는 중이에요…"
MSG_FIRST_LOAD = "모델을 불러오는 중이에요… 처음 한 번은 30초~1분쯤 걸려요."
MSG_FAILED = "다음 토큰을 계산하지 못했어요. 잠시 뒤 다시 해 보고, 계속 안 되면 강사님께 알려 주세요."
MSG_PRESS_FIRST = "'다음 토큰 보기'를 누르면 모델이 생각하는 다음 토큰 후보가 여기에 그래프로 나와요."
MSG_END = "1등 후보가 '{text}'(글의 끝 표시)예요. 모델은 여기서 글을 끝내고 싶어 해요. 그래서 붙이지 않았어요."
MSG_PICKED_END = "'{text}'(글의 끝 표시)가 뽑혔어요. 모델이 여기서 글을 끝내려고 해요. 한 번 더 뽑아 볼 수도 있어요."
MSG_PICKED_BYTE = "글자의 일부(바이트 조각)가 뽑혀서 붙이지 않았어요. 한 번 더 뽑아 보세요."
MSG_SKIPPED_BYTE = "1등 후보가 글자의 일부(바이트 조각)라서, 글자로 된 가장 높은 후보 '{text}'를 붙였어요."
MSG_APPENDED = "'{text}'를 붙였어요 (확률 {prob})."

TEMPERATURE_NOTE = (
    "온도는 확률 모양을 바꿔요. 온도가 낮을수록(0에 가까울수록) 1등 후보에 확률이 몰리고, "
    "높을수록(2에 가까울수록) 여러 후보에 고르게 퍼져요. 온도 0이면 늘 1등만 골라요."
)

_SPECIAL = re.compile(r"^<[^<>\s]+>$")  # <eos>, <end_of_turn>, <pad>, <0xF0> ...


def _is_special(text: str) -> bool:
    return bool(_SPECIAL.match(text)) and byte_value(text) is None


def _label(tok: TokenProb) -> str:
    byte = byte_value(tok.text)
    if byte is not None:
        return f"[바이트 {byte:02X}]"
    if _is_special(tok.text):
        return f"[{tok.text}]"
    return visible_text(tok.text) or "∅"


def _quoted(tok: TokenProb) -> str:
    return f"'{_label(tok)}'"


def _percent(p: float) -> str:
    return f"{p * 100:.1f}%" if p >= 0.001 else f"{p * 100:.2f}%"


_font_ready: bool | None = None


def _korean_font() -> dict:
    """rc settings that make Hangul render; the lab-wide helper when it is there."""
    global _font_ready
    try:
        from donghaeng.toolkit.plotting import use_korean_font

        use_korean_font()
        _font_ready = True
        return {}
    except Exception as exc:  # helper missing or no Korean font: fall back, never fail the chart
        if _font_ready is None:
            log.warning("donghaeng.toolkit.plotting.use_korean_font unavailable (%s); looking for a font here", exc)
        _font_ready = False
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for family in ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR", "UnDotum"):
        if family in names:
            return {"font.family": [family, "DejaVu Sans"], "axes.unicode_minus": False}
    return {}


def render_chart(tokens: list[TokenProb], temperature: float) -> bytes:
    """A horizontal bar chart (PNG bytes) of the candidates, most likely on top."""
    import matplotlib
    from matplotlib.figure import Figure

    rc = _korean_font()
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Glyph ... missing" for emoji the font lacks
        fig = Figure(figsize=(6.4, 0.38 * len(tokens) + 1.3), dpi=100)
        ax = fig.subplots()
        labels = [_quoted(t) for t in tokens]
        values = [t.prob * 100 for t in tokens]
        colors = ["#1f77b4"] + ["#9ecae1"] * (len(tokens) - 1)
        ax.barh(range(len(tokens)), values, color=colors)
        ax.set_yticks(range(len(tokens)), labels)
        ax.invert_yaxis()
        top = max(values, default=0)
        ax.set_xlim(0, max(5.0, min(100.0, top * 1.25)))
        for y, v in enumerate(values):
            ax.text(v + top * 0.01, y, _percent(v / 100), va="center", fontsize=9)
        ax.set_xlabel("확률 (%)")
        ax.set_title(f"온도 {temperature:.1f}에서 다음 토큰 후보 {len(tokens)}개")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return buf.getvalue()




class NextTokenViewer(LearnerWidget):
    """See :func:`next_token_viewer`."""

    label = "다음 토큰 보기"

    def __init__(self, client: ModelClient | None = None, prompt: str = DEFAULT_PROMPT) -> None:
        self._client = client
        self.candidates: list[TokenProb] = []
        self.message = ""
        self._shown = False  # the sliders only redraw once the learner asked for a chart
        self._shown_for: tuple | None = None  # (prompt, top_k, temperature) of the chart on screen
        self._busy = False
        self._rng = random.Random()

        self.prompt = widgets.Textarea(
            value=prompt,
            placeholder="모델에게 이어 쓰게 할 글을 써 보세요.",
            description="프롬프트",
            tooltip="모델이 이어서 쓸 글",
            layout=widgets.Layout(width="95%", height="4.5em"),
        )
        self.top_k = number_field("후보 수", 10, 3, 20, 1, "그래프에 보여 줄 후보 토큰 수")
        self.temperature = number_field("온도", 1.0, 0.0, 2.0, 0.1, "낮으면 1등에 몰리고, 높으면 고르게 퍼져요")
        self.show_button = widgets.Button(
            description="다음 토큰 보기", tooltip="모델이 생각하는 다음 토큰 후보를 그래프로 보여 줘요",
            icon="bar-chart", button_style="primary",
        )
        self.greedy_button = widgets.Button(
            description="가장 높은 것 붙이기", tooltip="확률이 가장 높은 토큰을 프롬프트 끝에 붙여요",
            icon="plus",
        )
        self.sample_button = widgets.Button(
            description="뽑아서 붙이기", tooltip="보이는 후보들 가운데 확률에 따라 하나를 뽑아 붙여요",
            icon="random",
        )
        self.status = widgets.HTML(value="")
        self.chart = widgets.HTML(value=f'<div style="color:#555">{html.escape(MSG_PRESS_FIRST)}</div>')
        self.note = widgets.HTML(value=f'<div style="color:#37474f">{html.escape(TEMPERATURE_NOTE)}</div>')

        self.show_button.on_click(lambda _b: self.show())
        self.greedy_button.on_click(lambda _b: self.append_top())
        self.sample_button.on_click(lambda _b: self.append_sample())
        self.top_k.observe(self._slider_moved, names="value")
        self.temperature.observe(self._slider_moved, names="value")

        self._buttons = [self.show_button, self.greedy_button, self.sample_button]
        super().__init__(
            children=[
                self.prompt,
                widgets.HBox(children=[self.top_k, self.temperature]),
                widgets.HBox(children=self._buttons),
                self.status,
                self.chart,
                self.note,
            ],
            layout=widgets.Layout(border="1px solid #d0d7de", padding="0.6em", margin="0.5em 0"),
        )

    # -- helpers --------------------------------------------------------------------------

    def _compute(self) -> bool:
        """Fetch candidates for the current prompt and redraw; False after a Korean message."""
        if self._busy:
            return False
        self._busy = True
        for button in self._buttons:
            button.disabled = True
        try:
            client = self.client
            first = getattr(client, "loaded", True) is False
            self._show(MSG_FIRST_LOAD if first else MSG_WORKING)
            key = self._key()
            prompt, top_k, temperature = key
            self.candidates = client.next_tokens(prompt, top_k=top_k, temperature=temperature)
            self._draw(temperature)
            self._shown, self._shown_for = True, key
            self._show("")
            return True
        except ModelError as exc:
            self._show(str(exc), "error")
        except Exception:  # a widget callback must never show a learner a traceback
            log.exception("next-token viewer failed")
            self._show(MSG_FAILED, "error")
        finally:
            self._busy = False
            for button in self._buttons:
                button.disabled = False
        return False

    def _key(self) -> tuple[str, int, float]:
        return (self.prompt.value, int(self.top_k.value), round(float(self.temperature.value), 2))

    def _current(self) -> bool:
        """Candidates for exactly what is on screen now (computed only when needed)."""
        return bool(self.candidates) and self._shown_for == self._key() or self._compute()

    def _draw(self, temperature: float) -> None:
        tokens = self.candidates
        png = base64.b64encode(render_chart(tokens, temperature)).decode("ascii")
        alt = ", ".join(f"{_quoted(t)} {_percent(t.prob)}" for t in tokens)
        rows = "".join(
            f"<li>{html.escape(_label(t))} — {_percent(t.prob)} (토큰 번호 {t.id})</li>" for t in tokens
        )
        self.chart.value = (
            f'<img src="data:image/png;base64,{png}" style="max-width:100%" '
            f'alt="{html.escape(f"온도 {temperature:.1f}에서 다음 토큰 후보: {alt}")}">'
            f"<details><summary>표로 보기</summary><ol>{rows}</ol></details>"
        )
        if tokens:
            best = tokens[0]
            self.note.value = (
                f'<div style="color:#37474f">{html.escape(TEMPERATURE_NOTE)}<br>'
                f"<b>{html.escape(f'지금 온도 {temperature:.1f}: 1등 후보 ' + _quoted(best) + f'의 확률은 {_percent(best.prob)}예요.')}</b></div>"
            )

    def _append(self, tok: TokenProb, message: str) -> None:
        self.prompt.value = self.prompt.value + tok.text
        self._compute()  # the chart moves on to the next step
        if not self.message:
            self._show(message, "ok")

    # -- actions --------------------------------------------------------------------------

    def show(self) -> list[TokenProb]:
        """Compute and draw the next-token candidates for the current prompt."""
        self._compute()
        return self.candidates

    def _slider_moved(self, _change) -> None:
        if self._shown:
            self._compute()

    def append_top(self) -> None:
        """Append the most likely next token (skipping byte pieces; stopping at end markers)."""
        if not self._current():
            return
        best = self.candidates[0] if self.candidates else None
        if best is None:
            return
        if _is_special(best.text):
            self._show(MSG_END.format(text=best.text), "warn")
            return
        if byte_value(best.text) is None:
            self._append(best, MSG_APPENDED.format(text=visible_text(best.text), prob=_percent(best.prob)))
            return
        for tok in self.candidates[1:]:
            if byte_value(tok.text) is None and not _is_special(tok.text):
                self._append(tok, MSG_SKIPPED_BYTE.format(text=visible_text(tok.text)))
                return
        self._show(MSG_PICKED_BYTE, "warn")

    def append_sample(self) -> None:
        """Draw one of the shown candidates by probability and append it."""
        if not self._current():
            return
        if not self.candidates:
            return
        weights = [max(t.prob, 0.0) for t in self.candidates]
        if sum(weights) <= 0:
            weights = [1.0] + [0.0] * (len(weights) - 1)
        tok = self._rng.choices(self.candidates, weights=weights)[0]
        if _is_special(tok.text):
            self._show(MSG_PICKED_END.format(text=tok.text), "warn")
        elif byte_value(tok.text) is not None:
            self._show(MSG_PICKED_BYTE, "warn")
        else:
            self._append(tok, MSG_APPENDED.format(text=visible_text(tok.text), prob=_percent(tok.prob)))


def next_token_viewer(client: ModelClient | None = None, prompt: str = DEFAULT_PROMPT) -> widgets.Widget:
    """Prompt, top-k and temperature sliders, a bar chart of the next-token probabilities and
    buttons that append the best or a sampled token.  *client* defaults to
    :func:`donghaeng.toolkit.model_client.get_client`."""
    return NextTokenViewer(client, prompt)
