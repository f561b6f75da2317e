"""Read a class roster (CSV or XLSX) into people, checking every row before anything is created.

Trainers prepare rosters in Excel, so the reader accepts what Excel on Korean Windows produces
(CP949 CSV, numbers that lost their leading zero, Korean column titles) and reports every problem
at once, by row number as the spreadsheet shows it, so the file can be fixed in one pass.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import openpyxl

ROLES: tuple[str, ...] = ("learner", "trainer", "admin")

_ROLE_ALIASES: dict[str, str] = {
    "learner": "learner", "학습자": "learner", "수강생": "learner", "교육생": "learner",
    "trainer": "trainer", "강사": "trainer", "instructor": "trainer",
    "admin": "admin", "관리자": "admin",
}
_ROLE_HELP = "학습자(수강생, 교육생, learner), 강사(instructor, trainer), 관리자(admin)"

# Canonical field -> Korean label used in messages; header aliases are compared without spaces, casefolded.
_FIELDS: dict[str, str] = {
    "name": "이름", "login": "아이디", "email": "이메일", "phone": "전화번호", "role": "역할", "course": "과정",
}
_HEADER_ALIASES: dict[str, str] = {
    "이름": "name", "성명": "name", "name": "name",
    "아이디": "login", "로그인": "login", "id": "login", "login": "login", "username": "login",
    "이메일": "email", "email": "email", "e-mail": "email",
    "전화": "phone", "전화번호": "phone", "휴대폰": "phone", "phone": "phone",
    "역할": "role", "구분": "role", "role": "role",
    "과정": "course", "course": "course", "courses": "course",
}
_REQUIRED: tuple[str, ...] = ("name", "login", "role", "course")

_LOGIN_RE = re.compile(r"^[a-z][a-z0-9_]{2,31}$")
# System accounts share the login namespace (one OS user per hub user), so these can never be people.
_RESERVED_LOGINS = frozenset({
    "root", "admin", "daemon", "bin", "sys", "nobody", "jovyan", "www-data", "postgres", "ubuntu", "debian",
})
_GRADER_PREFIX = "grader"
_NAME_MAX = 50
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_COURSE_SPLIT_RE = re.compile(r"[,;/\s]+")
_PHONE_STRIP_RE = re.compile(r"[\s.\-()]")
_PHONE_PATTERNS = (
    re.compile(r"^(010)(\d{4})(\d{4})$"),                     # mobile
    re.compile(r"^(01[16789])(\d{3,4})(\d{4})$"),             # older mobile prefixes
    re.compile(r"^(02)(\d{3,4})(\d{4})$"),                    # Seoul
    re.compile(r"^(0[3-6][1-5]|070)(\d{3,4})(\d{4})$"),       # other regions, internet phone
)


@dataclass(frozen=True)
class Person:
    login: str
    name: str
    role: str
    courses: tuple[str, ...]
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Problem:
    row: int  # 1-based row number as a spreadsheet user sees it (header is row 1); 0 for the whole file
    column: str | None  # the column title as written in the file's first row
    message: str  # Korean

    def __str__(self) -> str:
        if self.row == 0:
            return self.message
        where = f"{self.row}행" + (f" ({self.column})" if self.column else "")
        return f"{where}: {self.message}"


class RosterError(Exception):
    """The roster cannot be used as it is; ``problems`` lists everything to fix."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(problems)

    def __str__(self) -> str:
        lines = [f"명단 파일에서 고칠 곳이 {len(self.problems)}군데 있어요:"]
        lines += [f"- {problem}" for problem in self.problems]
        return "\n".join(lines)


def _file_error(message: str) -> RosterError:
    return RosterError([Problem(0, None, message)])


def _cell_text(value: object) -> str:
    """Spreadsheet cell as trimmed text; whole-number floats lose their '.0' (Excel stores numbers as floats)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_csv(path: Path) -> list[list[str]]:
    try:
        data = path.read_bytes()
    except OSError:
        raise _file_error(f"파일을 열 수 없어요: {path.name}") from None
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:  # NUL bytes mean binary data that merely happened to decode
            break
    else:
        raise _file_error(
            "CSV 파일의 글자를 읽을 수 없어요. 엑셀에서 'CSV UTF-8(쉼표로 분리)' 형식으로 다시 저장하거나, "
            "UTF-8 또는 CP949 인코딩의 CSV로 저장해 주세요."
        )
    try:
        return [[_cell_text(cell) for cell in record] for record in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error:
        raise _file_error("CSV 파일 형식이 올바르지 않아요. 엑셀에서 CSV로 다시 저장해 주세요.") from None


def _read_xlsx(path: Path) -> list[list[str]]:
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # openpyxl reports damaged files through many unrelated exception types
        raise _file_error(
            f"엑셀 파일을 열 수 없어요: {path.name}. 파일이 손상되었거나 엑셀(.xlsx) 파일이 아니에요. "
            "엑셀에서 열어 .xlsx로 다시 저장해 주세요."
        ) from None
    try:
        sheet = workbook.worksheets[0]
        return [[_cell_text(cell) for cell in row] for row in sheet.iter_rows(values_only=True)]
    except Exception:  # a damaged sheet only fails while its rows are read
        raise _file_error(
            f"엑셀 파일의 첫 번째 시트를 읽을 수 없어요: {path.name}. 엑셀에서 열어 .xlsx로 다시 저장해 주세요."
        ) from None
    finally:
        workbook.close()


def _read_rows(path: Path) -> list[list[str]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".xls":
        raise _file_error("예전 엑셀 형식(.xls)은 읽을 수 없어요. 엑셀에서 .xlsx나 CSV로 다시 저장해 주세요.")
    raise _file_error(f"명단은 .csv나 .xlsx 파일만 읽을 수 있어요 (받은 파일: {path.name}).")


def _map_header(header: list[str]) -> tuple[dict[str, int], list[Problem]]:
    """Column index of each known field, plus problems for missing or repeated required columns."""
    columns: dict[str, int] = {}
    problems: list[Problem] = []
    for index, title in enumerate(header):
        field = _HEADER_ALIASES.get(re.sub(r"\s+", "", title).casefold())
        if field is None:
            continue
        if field in columns:
            first = header[columns[field]]
            problems.append(Problem(0, None, (
                f"'{_FIELDS[field]}' 칸이 두 번 있어요 ('{first}', '{title}'). 하나만 남겨 주세요."
            )))
            continue
        columns[field] = index
    for field in _REQUIRED:
        if field not in columns:
            names = ", ".join(alias for alias, target in _HEADER_ALIASES.items() if target == field)
            problems.append(Problem(0, None, (
                f"'{_FIELDS[field]}' 칸을 찾을 수 없어요. 첫 줄(1행)에 '{_FIELDS[field]}' 제목을 넣어 주세요 "
                f"(쓸 수 있는 제목: {names})."
            )))
    return columns, problems


def _login_problem(login: str) -> str | None:
    if not _LOGIN_RE.match(login):
        return (f"쓸 수 없는 아이디예요: '{login}'. 아이디는 영문 소문자로 시작하고 "
                "영문 소문자·숫자·밑줄(_)만 3~32자로 써 주세요.")
    if login.startswith(_GRADER_PREFIX):
        return (f"쓸 수 없는 아이디예요: '{login}'. 'grader'로 시작하는 아이디는 채점용으로 남겨 두었어요. "
                "다른 아이디를 골라 주세요.")
    if login in _RESERVED_LOGINS:
        return f"쓸 수 없는 아이디예요: '{login}'. 시스템이 쓰는 이름이에요. 다른 아이디를 골라 주세요."
    return None


def _normalise_phone(raw: str) -> str | None:
    """``010-1234-5678``-style number, or None when *raw* is not a Korean phone number.

    Accepts spaces, dots, dashes, brackets, a ``+82`` prefix, and a dropped leading zero
    (Excel turns 01012345678 into the number 1012345678).
    """
    digits = _PHONE_STRIP_RE.sub("", raw)
    if digits.startswith("+82"):
        digits = "0" + digits[3:].removeprefix("0")
    if not digits.isdigit():
        return None
    if not digits.startswith("0"):
        digits = "0" + digits
    for pattern in _PHONE_PATTERNS:
        match = pattern.match(digits)
        if match:
            return "-".join(match.groups())
    return None


def _parse_courses(raw: str, known: dict[str, str]) -> tuple[tuple[str, ...], list[str]]:
    """Known course ids in the cell (matched case-insensitively) and the unknown ones."""
    courses: list[str] = []
    unknown: list[str] = []
    for item in _COURSE_SPLIT_RE.split(raw):
        if not item:
            continue
        course = known.get(item.casefold())
        if course is None:
            unknown.append(item)
        elif course not in courses:
            courses.append(course)
    return tuple(courses), unknown


def _parse_row(
    row_no: int, cells: list[str], header: list[str], columns: dict[str, int], known: dict[str, str],
    first_row_of: dict[str, int], problems: list[Problem],
) -> Person | None:
    """Person from one data row, or None after adding its problems to *problems*.

    *first_row_of* maps each valid login seen so far to its row, to catch the same login used twice.
    """
    def value(field: str) -> str:
        index = columns.get(field)
        return cells[index] if index is not None and index < len(cells) else ""

    def problem(field: str, message: str) -> None:
        problems.append(Problem(row_no, header[columns[field]], message))

    before = len(problems)

    name = value("name")
    if not name:
        problem("name", "이름이 비어 있어요.")
    elif len(name) > _NAME_MAX:
        problem("name", f"이름이 너무 길어요. {_NAME_MAX}자까지 쓸 수 있어요.")

    login = value("login").lower()
    if not login:
        problem("login", "아이디가 비어 있어요.")
    elif (message := _login_problem(login)) is not None:
        problem("login", message)
    elif login in first_row_of:
        problem("login", (
            f"'{login}' 아이디가 이미 {first_row_of[login]}행에 있어요. 아이디는 사람마다 달라야 해요."
        ))
    else:
        first_row_of[login] = row_no

    raw_role = value("role")
    role = _ROLE_ALIASES.get(raw_role.casefold())
    if not raw_role:
        problem("role", f"역할이 비어 있어요. 다음 중 하나로 써 주세요: {_ROLE_HELP}.")
    elif role is None:
        problem("role", f"알 수 없는 역할이에요: '{raw_role}'. 다음 중 하나로 써 주세요: {_ROLE_HELP}.")

    known_list = ", ".join(sorted(known.values())) or "(아직 만든 과정이 없어요)"
    courses, unknown = _parse_courses(value("course"), known)
    if unknown:
        problem("course", f"없는 과정이에요: {', '.join(unknown)}. 있는 과정: {known_list}.")
    elif not courses and role != "admin":
        problem("course", f"과정이 비어 있어요 (관리자만 비워 둘 수 있어요). 있는 과정: {known_list}.")

    email = value("email") or None
    if email is not None and not _EMAIL_RE.match(email):
        problem("email", f"이메일 주소 모양이 아니에요: '{email}'. 예: hong@example.com")

    raw_phone = value("phone")
    phone = _normalise_phone(raw_phone) if raw_phone else None
    if raw_phone and phone is None:
        problem("phone", f"전화번호로 읽을 수 없어요: '{raw_phone}'. 예: 010-1234-5678")

    if len(problems) > before or role is None:  # role is None only with a problem; checked for the type
        return None
    return Person(login=login, name=name, role=role, courses=courses, email=email, phone=phone)


def read_roster(path: Path, course_ids: Collection[str]) -> list[Person]:
    """People listed in the roster at *path*; raises RosterError listing every problem found."""
    rows = _read_rows(path)
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows:
        raise _file_error("명단 파일이 비어 있어요.")

    header = rows[0]
    columns, problems = _map_header(header)
    if problems:
        raise RosterError(problems)
    if len(rows) == 1:
        raise _file_error("명단에 사람이 한 명도 없어요. 2행부터 한 줄에 한 사람씩 적어 주세요.")

    known = {course.casefold(): course for course in course_ids}
    people: list[Person] = []
    first_row_of: dict[str, int] = {}
    for row_no, cells in enumerate(rows[1:], start=2):
        if not any(cells):
            problems.append(Problem(row_no, None, "빈 줄이에요: 지우거나 내용을 채워 주세요."))
            continue
        person = _parse_row(row_no, cells, header, columns, known, first_row_of, problems)
        if person is not None:
            people.append(person)
    if problems:
        raise RosterError(problems)
    return people
