"""The one place that makes Hangul render in matplotlib plots (and gives other code a Korean font file).

Call :func:`use_korean_font` before drawing; every module of the lab that plots goes through it.
It prefers the Debian ``fonts-nanum`` faces (NanumGothic, then NanumBarunGothic), falls back to other
common Korean fonts found on the machine, registers the file with matplotlib's font manager (so a font
installed after matplotlib built its cache still works), selects it, and turns off the Unicode minus
sign (Nanum fonts have no U+2212, which would otherwise print as a box on negative tick labels).

:func:`korean_font_path` returns the same TrueType file for code that embeds a font itself, such as PDF
generation with fpdf2.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import matplotlib as mpl
from matplotlib import font_manager

__all__ = [
    "KoreanFontNotFoundError",
    "FONT_PACKAGE",
    "korean_font_path",
    "use_korean_font",
]

#: The Debian package that provides the lab's Korean fonts.
FONT_PACKAGE = "fonts-nanum"

#: Setting this environment variable to a font file overrides the search (must contain Hangul).
FONT_ENV = "DONGHAENG_KOREAN_FONT"

# Regular-weight files, best first. Matched by file name, case-insensitively.
_PREFERRED_FILES = (
    "NanumGothic.ttf",
    "NanumBarunGothic.ttf",
    "NanumSquareR.ttf",
    "NanumGothicCoding.ttf",
    "NotoSansKR-Regular.ttf",
    "NotoSansKR-Regular.otf",
    "NotoSansCJKkr-Regular.otf",
    "UnDotum.ttf",
    "malgun.ttf",
)
# Family names accepted when none of the files above is present (e.g. a .ttc collection).
_PREFERRED_FAMILIES = (
    "NanumGothic",
    "NanumBarunGothic",
    "Noto Sans KR",
    "Noto Sans CJK KR",
    "Source Han Sans KR",
    "UnDotum",
    "Malgun Gothic",
    "AppleGothic",
    "Apple SD Gothic Neo",
)
_FALLBACK_FAMILY = "DejaVu Sans"  # for the odd symbol the Korean face lacks

_lock = threading.Lock()
_chosen: tuple[str, Path] | None = None


class KoreanFontNotFoundError(RuntimeError):
    """No font with Hangul glyphs was found on this machine."""


def _has_hangul(path: Path) -> bool:
    """Whether the font file maps the Hangul syllables '한' and '글' to real glyphs."""
    try:
        from matplotlib.ft2font import FT2Font

        font = FT2Font(str(path))
        return all(font.get_char_index(ord(ch)) != 0 for ch in "한글")
    except Exception:  # unreadable or unsupported file: not usable
        return False


def _candidate_files() -> list[Path]:
    """Font files in the usual system and user font folders, plus those matplotlib already knows."""
    seen: dict[str, Path] = {}
    for name in font_manager.findSystemFonts(fontext="ttf"):  # also lists .otf/.ttc
        seen.setdefault(name, Path(name))
    for entry in font_manager.fontManager.ttflist:
        seen.setdefault(entry.fname, Path(entry.fname))
    return list(seen.values())


def _find_font() -> Path:
    override = os.environ.get(FONT_ENV)
    if override:
        path = Path(override)
        if path.is_file() and _has_hangul(path):
            return path
        raise KoreanFontNotFoundError(
            f"{FONT_ENV}={override!r} is not a readable font file with Hangul glyphs."
        )

    files = _candidate_files()
    by_name: dict[str, list[Path]] = {}
    for path in files:
        by_name.setdefault(path.name.lower(), []).append(path)
    for wanted in _PREFERRED_FILES:
        for path in sorted(by_name.get(wanted.lower(), [])):
            if _has_hangul(path):
                return path

    # No preferred file name: look for a preferred family among the fonts matplotlib can read.
    families = {family.lower(): rank for rank, family in enumerate(_PREFERRED_FAMILIES)}
    ranked: list[tuple[int, str, Path]] = []
    for path in files:
        try:
            name = font_manager.FontProperties(fname=str(path)).get_name()
        except Exception:
            continue
        rank = families.get(name.lower())
        if rank is not None:
            ranked.append((rank, str(path), path))
    for _rank, _key, path in sorted(ranked):
        if _has_hangul(path):
            return path

    raise KoreanFontNotFoundError(
        "한글 글꼴을 찾지 못했어요. 관리자에게 글꼴 설치를 부탁해 주세요. "
        f"(No Korean font found: install the Debian package '{FONT_PACKAGE}', "
        f"e.g. `sudo apt-get install {FONT_PACKAGE}`, or set {FONT_ENV} to a Korean .ttf file.)"
    )


def _choose() -> tuple[str, Path]:
    global _chosen
    with _lock:
        if _chosen is None:
            path = _find_font()
            font_manager.fontManager.addfont(str(path))  # no-op if matplotlib already knows it
            family = font_manager.FontProperties(fname=str(path)).get_name()
            _chosen = (family, path)
        return _chosen


def korean_font_path() -> Path:
    """The Korean TrueType/OpenType file the lab uses (the one :func:`use_korean_font` selects).

    Raises :class:`KoreanFontNotFoundError` naming ``fonts-nanum`` when none is installed.
    """
    return _choose()[1]


def use_korean_font() -> str:
    """Make matplotlib draw Hangul; return the selected font family name (e.g. ``"NanumGothic"``).

    Safe to call any number of times: the search runs once, and the settings are re-applied on each
    call (so it also repairs them after ``plt.style.use`` or ``rcdefaults``).
    Raises :class:`KoreanFontNotFoundError` naming ``fonts-nanum`` when no Korean font is installed.
    """
    family, _path = _choose()
    fallbacks = [_FALLBACK_FAMILY] if family != _FALLBACK_FAMILY else []
    mpl.rcParams["font.family"] = [family, *fallbacks]
    sans = [f for f in mpl.rcParams["font.sans-serif"] if f != family]
    mpl.rcParams["font.sans-serif"] = [family, *sans]
    mpl.rcParams["axes.unicode_minus"] = False
    return family
