"""donghaeng.toolkit.plotting: Hangul renders in matplotlib with no missing-glyph warnings."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import matplotlib as mpl
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from donghaeng.toolkit import plotting
from donghaeng.toolkit.plotting import KoreanFontNotFoundError, korean_font_path, use_korean_font

HANGUL_SAMPLE = "한글 학습 곡선 손실 감사합니다 안녕하세요"


@pytest.fixture(autouse=True)
def _restore_rc():
    with mpl.rc_context():
        yield


def render_all_formats(fig: Figure) -> None:
    for fmt in ("png", "pdf", "svg"):
        fig.savefig(io.BytesIO(), format=fmt)


def korean_figure() -> Figure:
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([-3, -1, 2], [-1.5, 0.5, 2], label="손실 (낮을수록 좋아요)")
    ax.set_title("학습 곡선 — 한글 제목")
    ax.set_xlabel("학습 횟수")
    ax.set_ylabel("손실")
    ax.set_xticks([-3, 0, 2], ["처음", "중간", "끝"])
    ax.text(0, 0, HANGUL_SAMPLE)
    ax.legend(title="범례")
    fig.suptitle("동행랩 그래프")
    return fig


def glyph_problems(records, caplog) -> list[str]:
    messages = [str(w.message) for w in records] + [r.getMessage() for r in caplog.records]
    return [m for m in messages if "missing" in m.lower() or "glyph" in m.lower()]


def test_font_file_has_hangul_glyphs():
    path = korean_font_path()
    assert isinstance(path, Path) and path.is_file()
    font = FT2Font(str(path))
    for ch in "한글동행랩가힣":
        assert font.get_char_index(ord(ch)) != 0, f"{path.name} has no glyph for {ch!r}"
    from fontTools.ttLib import TTFont  # matplotlib depends on fontTools

    cmap = TTFont(str(path), fontNumber=0).getBestCmap()
    assert all(ord(ch) in cmap for ch in HANGUL_SAMPLE if not ch.isspace())


def test_prefers_debian_nanum_when_installed():
    nanum = Path("/usr/share/fonts/truetype/nanum")
    if not (nanum / "NanumGothic.ttf").is_file():
        pytest.skip("fonts-nanum is not installed here")
    assert use_korean_font() == "NanumGothic"
    assert korean_font_path() == nanum / "NanumGothic.ttf"


def test_use_korean_font_sets_rc_and_is_idempotent():
    family = use_korean_font()
    assert family
    assert mpl.rcParams["font.family"][0] == family
    assert mpl.rcParams["font.sans-serif"][0] == family
    assert mpl.rcParams["axes.unicode_minus"] is False
    assert use_korean_font() == family
    assert mpl.rcParams["font.family"].count(family) == 1
    assert mpl.rcParams["font.sans-serif"].count(family) == 1
    # matplotlib resolves the selected family to the same file.
    resolved = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert Path(resolved).resolve() == korean_font_path().resolve()


def test_use_korean_font_repairs_after_rcdefaults():
    family = use_korean_font()
    mpl.rcdefaults()
    assert mpl.rcParams["font.family"][0] != family
    assert use_korean_font() == family
    assert mpl.rcParams["font.family"][0] == family


def test_hangul_figure_renders_without_missing_glyph_warnings(caplog):
    use_korean_font()
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        render_all_formats(korean_figure())
    assert glyph_problems(records, caplog) == []


def test_capture_detects_missing_glyphs_without_korean_font(caplog):
    """Negative control: the same figure in DejaVu Sans does warn, so the check above is meaningful."""
    mpl.rcParams["font.family"] = ["DejaVu Sans"]
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        korean_figure().savefig(io.BytesIO(), format="png")
    assert glyph_problems(records, caplog), "expected 'Glyph ... missing' warnings with a Latin-only font"


def test_missing_korean_font_names_the_package(monkeypatch):
    monkeypatch.setattr(plotting, "_chosen", None)
    monkeypatch.setattr(plotting, "_candidate_files", lambda: [])
    monkeypatch.delenv(plotting.FONT_ENV, raising=False)
    with pytest.raises(KoreanFontNotFoundError, match="fonts-nanum"):
        use_korean_font()
    with pytest.raises(KoreanFontNotFoundError, match="fonts-nanum"):
        korean_font_path()


def test_latin_only_fonts_are_not_accepted(monkeypatch):
    dejavu = Path(font_manager.findfont("DejaVu Sans"))
    monkeypatch.setattr(plotting, "_chosen", None)
    monkeypatch.setattr(plotting, "_candidate_files", lambda: [dejavu])
    monkeypatch.delenv(plotting.FONT_ENV, raising=False)
    with pytest.raises(KoreanFontNotFoundError):
        korean_font_path()


def test_env_override(monkeypatch, tmp_path):
    good = korean_font_path()
    monkeypatch.setattr(plotting, "_chosen", None)
    monkeypatch.setenv(plotting.FONT_ENV, str(good))
    assert korean_font_path() == good

    monkeypatch.setattr(plotting, "_chosen", None)
    bogus = tmp_path / "not-a-font.ttf"
    bogus.write_bytes(b"nope")
    monkeypatch.setenv(plotting.FONT_ENV, str(bogus))
    with pytest.raises(KoreanFontNotFoundError, match=plotting.FONT_ENV):
        korean_font_path()
