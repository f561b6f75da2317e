"""The certificate people print: a Korean A4 PDF (fpdf2, Nanum font embedded) with a QR code to the verify page."""

from __future__ import annotations

import io
import logging
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import segno
from fontTools.ttLib import TTFont
from fpdf import FPDF

from donghaeng.toolkit.plotting import korean_font_path

PAGE_W, PAGE_H = 297, 210  # A4 landscape, mm
NAME_WIDTH = 230  # mm available for the holder's name
NAME_SIZES = (36, 12)  # largest and smallest font size (pt) tried before wrapping
MAX_NAME_LINES = 3
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)  # fpdf2 subsetting Nanum: harmless notes


@lru_cache(maxsize=4)
def _glyphs(font: Path) -> frozenset[int]:
    return frozenset(TTFont(str(font), lazy=True).getBestCmap())


def printable(text: str, font: Path | None = None) -> str:
    """*text* without the characters the font cannot draw (emoji, joiners): no tofu boxes on paper."""
    glyphs = _glyphs(font or korean_font_path())
    kept = "".join(ch if ord(ch) in glyphs or ch == " " else " " for ch in text)
    return re.sub(r"\s+", " ", kept).strip()


def _bold(regular: Path) -> Path:
    bold = regular.with_name(regular.stem + "Bold" + regular.suffix)
    return bold if bold.is_file() else regular


def _fit_name(pdf: FPDF, name: str, y: float) -> float:
    """Write *name* centred at *y*: the largest size that fits one line, else wrapped at the smallest."""
    largest, smallest = NAME_SIZES
    for size in range(largest, smallest - 1, -2):
        pdf.set_font("nanum-bold", size=size)
        if pdf.get_string_width(name) <= NAME_WIDTH:
            pdf.set_xy((PAGE_W - NAME_WIDTH) / 2, y)
            pdf.cell(NAME_WIDTH, size * 0.45, name, align="C")
            return y + size * 0.45
    height = smallest * 0.45
    while len(pdf.multi_cell(NAME_WIDTH, height, name, dry_run=True, output="LINES")) > MAX_NAME_LINES:
        name = name[:-2] + "…"  # an absurdly long name: keep what fits on three lines
    pdf.set_xy((PAGE_W - NAME_WIDTH) / 2, y)
    pdf.multi_cell(NAME_WIDTH, height, name, align="C")
    return pdf.get_y()


def _date(iso: str) -> str:
    issued = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    return f"{issued.year}년 {issued.month}월 {issued.day}일"


def render(*, name: str, level: str, description: str, issued_at: str, issuer: str, serial: str,
           verify_url: str) -> bytes:
    """The certificate as PDF bytes. *name* is printed without glyphs the font lacks."""
    font = korean_font_path()
    pdf = FPDF(orientation="landscape", unit="mm", format="A4")
    pdf.set_title(f"{issuer} 수료증 {serial}")
    pdf.set_author(issuer)
    pdf.set_auto_page_break(False)
    pdf.add_font("nanum", fname=str(font))
    pdf.add_font("nanum-bold", fname=str(_bold(font)))
    pdf.add_page()
    pdf.set_draw_color(40, 70, 120)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, PAGE_W - 20, PAGE_H - 20)
    pdf.set_line_width(0.3)
    pdf.rect(14, 14, PAGE_W - 28, PAGE_H - 28)

    pdf.set_text_color(40, 70, 120)
    pdf.set_font("nanum-bold", size=34)
    pdf.set_xy(0, 30)
    pdf.cell(PAGE_W, 14, "수 료 증", align="C")
    pdf.set_font("nanum", size=12)
    pdf.set_xy(0, 46)
    pdf.cell(PAGE_W, 6, "CERTIFICATE", align="C")

    pdf.set_text_color(20, 20, 20)
    bottom = _fit_name(pdf, printable(name, font) or "-", 66)
    pdf.set_font("nanum-bold", size=20)
    pdf.set_xy(0, bottom + 8)
    pdf.cell(PAGE_W, 10, level, align="C")
    pdf.set_font("nanum", size=13)
    pdf.set_xy(40, bottom + 22)
    body = f"위 사람은 {issuer}의 「{level}」 기준을 모두 마쳤기에 이 증서를 드려요."
    if description:
        body += f"\n{description}"
    pdf.multi_cell(PAGE_W - 80, 7, body, align="C")

    pdf.set_font("nanum", size=12)
    pdf.set_xy(24, 160)
    pdf.cell(120, 7, f"발급일  {_date(issued_at)}")
    pdf.set_xy(24, 168)
    pdf.cell(120, 7, f"발급  {issuer}")
    pdf.set_xy(24, 176)
    pdf.cell(160, 7, f"일련번호  {serial}")

    qr = io.BytesIO()
    segno.make(verify_url, error="m").save(qr, kind="png", scale=8, border=4)
    pdf.image(qr, x=PAGE_W - 62, y=138, w=42, h=42)
    pdf.set_font("nanum", size=8)
    pdf.set_xy(PAGE_W - 110, 182)
    pdf.cell(90, 4, "QR 코드로 진위를 확인할 수 있어요", align="R")
    pdf.set_xy(PAGE_W - 190, 186)
    pdf.cell(170, 4, verify_url, align="R")
    return bytes(pdf.output())
