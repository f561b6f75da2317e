"""Score distribution of one assignment as a PNG or SVG (matplotlib, Hangul through donghaeng.toolkit.plotting)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from statistics import mean

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from donghaeng.toolkit.plotting import use_korean_font

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


def describe(assignment: str, percents: Sequence[float]) -> str:
    """The plot in one Korean sentence (its alt text, for screen readers)."""
    if not percents:
        return f"{assignment}: 아직 채점된 제출물이 없어요."
    return (f"{assignment} 점수 분포: {len(percents)}명 채점, 평균 {mean(percents):.0f}점, "
            f"가장 낮은 점수 {min(percents):g}점, 가장 높은 점수 {max(percents):g}점.")


def distribution(assignment: str, percents: Sequence[float], failing_below: float, fmt: str) -> bytes:
    """A histogram of scores in percent (10-point bins) with the failing line; *fmt* is png or svg."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown plot format {fmt!r}")
    use_korean_font()
    fig = Figure(figsize=(5.2, 3.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bins = list(range(0, 101, 10))
    ax.hist(list(percents), bins=bins, color="#2f6f9f", edgecolor="white")
    ax.axvline(failing_below, color="#b3261e", linestyle="--", label=f"기준 {failing_below:g}점")
    ax.set_xlim(0, 100)
    ax.set_xticks(bins)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{assignment} 점수 분포 ({len(percents)}명)")
    ax.set_xlabel("점수 (100점 기준)")
    ax.set_ylabel("학습자 수")
    ax.legend(loc="upper left")
    out = io.BytesIO()
    fig.savefig(out, format=fmt)
    return out.getvalue()
