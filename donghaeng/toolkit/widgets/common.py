"""What every learner widget shares: the status line and a readable form without a browser."""

from __future__ import annotations

import html

import ipywidgets as widgets

STATUS_COLORS = {"ok": "#1b5e20", "info": "#37474f", "warn": "#8a4b00", "error": "#b00020"}


def status_html(text: str, kind: str) -> str:
    """One status message; role=status/alert makes screen readers announce it when it changes."""
    role = "alert" if kind == "error" else "status"
    return (f'<div role="{role}" aria-live="polite" style="color:{STATUS_COLORS[kind]}; margin:0.3em 0">'
            f"{html.escape(text)}</div>")


def number_field(description: str, value: float, low: float, high: float, step: float, tooltip: str,
                 description_width: str = "initial") -> widgets.BoundedIntText | widgets.BoundedFloatText:
    """A labelled number box with the allowed range in its tooltip, in place of a slider.

    ipywidgets' sliders (noUiSlider) give their handle no accessible name, so a screen reader announces
    an unnamed slider (axe: aria-input-field-name); a number box gets a real ``<label for>``, and the
    arrow keys step it like a slider.
    """
    integer = all(float(v).is_integer() for v in (value, low, high, step))
    cls = widgets.BoundedIntText if integer else widgets.BoundedFloatText
    return cls(value=value, min=low, max=high, step=step, description=description,
               tooltip=f"{tooltip} ({low:g}~{high:g})", continuous_update=False,
               style={"description_width": description_width}, layout=widgets.Layout(width="auto"))


class LearnerWidget(widgets.VBox):
    """Base of the learner widgets.

    Where no browser renders widgets (nbgrader autograde, the feedback HTML) only ``text/plain`` is
    shown; :meth:`plain_text` makes that a short Korean line instead of a raw widget repr.
    """

    label = "실습 도구"
    message = ""  # the last status text, for tests and the readable form
    status: widgets.HTML

    _client = None  # a model client given to the widget; else the lab's shared one, on first use

    @property
    def client(self):
        """The language model client; resolving it loads nothing (the model loads on first request)."""
        if self._client is None:
            from donghaeng.toolkit import model_client
            self._client = model_client.get_client()
        return self._client

    def _show(self, text: str, kind: str = "info") -> None:
        self.message = text
        self.status.value = status_html(text, kind) if text else ""

    def plain_text(self) -> str:
        return f"[{self.label}] 브라우저에서 노트북을 열면 쓸 수 있어요."

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = self.plain_text()
        return bundle
