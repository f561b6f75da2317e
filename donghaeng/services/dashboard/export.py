"""The cohort table as CSV (UTF-8 with BOM, so Korean Excel opens it) or XLSX, safe to open.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some read a leading tab
or carriage return the same way) as a formula: a learner named ``=HYPERLINK(...)`` could otherwise
plant a link or a command in the trainer's Excel.  Such text cells get a leading apostrophe (OWASP's
"CSV injection" advice) so they show as the text they are; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.styles import Font

from donghaeng.services.dashboard.progress import CourseReport, local_time

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
Value = str | float | int | None


def neutralise(value: Value) -> Value:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def table(report: CourseReport) -> list[list[Value]]:
    """Header and one row per learner: login, name, each assignment's state and score, activity, risks."""
    header: list[Value] = ["아이디", "이름"]
    for name in report.assignments:
        header += [f"{name} 상태", f"{name} 점수(100점 기준)"]
    header += ["마지막 접속(한국 시간)", "살펴볼 점"]
    rows = [header]
    for row in report.learners:
        line: list[Value] = [row.person.login, row.person.name]
        for name in report.assignments:
            cell = row.cells[name]
            line += [cell.text, cell.percent]
        line += [local_time(row.last_activity), " / ".join(row.risks)]
        rows.append(line)
    return [[neutralise(v) for v in line] for line in rows]


def to_csv(rows: Sequence[Sequence[Value]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(["" if v is None else v for v in line] for line in rows)
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(rows: Sequence[Sequence[Value]], title: str) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    for line in rows:
        sheet.append(list(line))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text
    sheet.freeze_panes = "C2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
