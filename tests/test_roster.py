"""Roster files as trainers really produce them: Excel CSVs in several encodings, XLSX, Korean titles."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from donghaeng.common.roster import Person, Problem, RosterError, read_roster

COURSES = {"ai101", "py201"}

VALID_ROWS = [
    ["이름", "아이디", "이메일", "전화번호", "역할", "과정"],
    ["홍길동", "Hong", "hong@example.com", "010 1234 5678", "학습자", "ai101"],
    ["김영희", "kim_yh", "", "+82 10-9876-5432", "강사", "ai101, py201"],
    ["박관리", "park01", "", "", "관리자", ""],
]
EXPECTED = [
    Person("hong", "홍길동", "learner", ("ai101",), "hong@example.com", "010-1234-5678"),
    Person("kim_yh", "김영희", "trainer", ("ai101", "py201"), None, "010-9876-5432"),
    Person("park01", "박관리", "admin", (), None, None),
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    text = "\r\n".join(",".join(f'"{cell}"' if "," in cell else cell for cell in row) for row in rows) + "\r\n"
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def problems_of(path: Path, courses: set[str] = COURSES) -> list[Problem]:
    with pytest.raises(RosterError) as caught:
        read_roster(path, courses)
    return caught.value.problems


def roster(*data_rows: list[str]) -> list[list[str]]:
    return [["이름", "아이디", "역할", "과정"], *data_rows]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_csv_encodings_excel_produces_all_read_the_same(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "roster.csv", VALID_ROWS, encoding)
    assert read_roster(path, COURSES) == EXPECTED


def test_xlsx_roster_with_numeric_phone_that_lost_its_zero(tmp_path: Path) -> None:
    rows: list[list[object]] = [list(row) for row in VALID_ROWS]
    rows[1][3] = 1012345678  # Excel stores 010-1234-5678 typed as a number like this
    path = write_xlsx(tmp_path / "roster.xlsx", rows)
    assert read_roster(path, COURSES) == EXPECTED


def test_english_headers_in_any_case_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.CSV", [
        [" Name ", "USERNAME", "E-Mail", "Role", "Courses", "메모"],
        ["Lee", "lee_1", "lee@example.org", "Instructor", "py201;AI101", "지각 잦음"],
    ])
    assert read_roster(path, COURSES) == [
        Person("lee_1", "Lee", "trainer", ("py201", "ai101"), "lee@example.org"),
    ]


def test_korean_header_aliases(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", [
        ["성명", "로그인", "구분", "과정", "휴대폰"],
        ["최민수", "choi", "수강생", "ai101 / py201", "02.345.6789"],
        ["정다은", "jung", "교육생", "py201", "031-123-4567"],
    ])
    people = read_roster(path, COURSES)
    assert [(p.login, p.role, p.courses, p.phone) for p in people] == [
        ("choi", "learner", ("ai101", "py201"), "02-345-6789"),
        ("jung", "learner", ("py201",), "031-123-4567"),
    ]


def test_duplicate_login_points_to_first_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", roster(
        ["홍길동", "hong", "학습자", "ai101"],
        ["김철수", "kim", "학습자", "ai101"],
        ["홍길순", "HONG", "학습자", "ai101"],
    ))
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (4, "아이디")
    assert "2행" in problem.message


def test_bad_role_lists_accepted_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", roster(["홍길동", "hong", "선생님", "ai101"]))
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (2, "역할")
    assert "선생님" in problem.message
    assert all(word in problem.message for word in ("학습자", "강사", "관리자"))


def test_unknown_course_lists_known_courses(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", roster(["홍길동", "hong", "학습자", "ai101, ml999"]))
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (2, "과정")
    assert "ml999" in problem.message
    assert "ai101" in problem.message and "py201" in problem.message


@pytest.mark.parametrize("login", ["1kim", "ki", "kim-lee", "홍길동", "grader-ai101", "grader_x", "root", "jovyan"])
def test_unusable_logins_are_explained(tmp_path: Path, login: str) -> None:
    path = write_csv(tmp_path / "roster.csv", roster(["홍길동", login, "학습자", "ai101"]))
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (2, "아이디")
    assert "아이디" in problem.message


def test_only_admins_may_have_no_course(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", roster(["홍길동", "hong", "강사", ""]))
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (2, "과정")


def test_partial_row_reports_each_missing_cell(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", roster(
        ["홍길동", "hong", "학습자", "ai101"],
        ["", "kim", "", "ai101"],
    ))
    problems = problems_of(path)
    assert [(p.row, p.column) for p in problems] == [(3, "이름"), (3, "역할")]


def test_blank_row_in_the_middle_is_reported_but_trailing_blanks_are_not(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", roster(
        ["홍길동", "hong", "학습자", "ai101"],
        ["", "", "", ""],
        ["김철수", "kim", "학습자", "ai101"],
        ["", "", "", ""],
        [],
    ))
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (3, None)
    assert "빈 줄" in problem.message


def test_every_problem_in_the_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", [
        ["이름", "아이디", "역할", "과정", "이메일", "전화번호"],
        ["홍길동", "hong", "학습자", "ai101", "hong-at-example", "010-1234-5678"],
        ["김철수", "kim", "student", "ai101", "", "12345"],
    ])
    with pytest.raises(RosterError) as caught:
        read_roster(path, COURSES)
    assert [(p.row, p.column) for p in caught.value.problems] == [(2, "이메일"), (3, "역할"), (3, "전화번호")]
    report = str(caught.value)
    assert "2행 (이메일):" in report and "3행 (역할):" in report and "3행 (전화번호):" in report


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", [["이름", "아이디", "과정"], ["홍길동", "hong", "ai101"]])
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (0, None)
    assert "역할" in problem.message


def test_header_only_roster_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "roster.csv", roster())
    [problem] = problems_of(path)
    assert problem.row == 0


def test_undecodable_csv_asks_for_utf8_or_cp949(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes("이름,아이디\n".encode("utf-16") + bytes(range(256)))
    [problem] = problems_of(path)
    assert problem.row == 0
    assert "UTF-8" in problem.message and "CP949" in problem.message


def test_corrupt_xlsx_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a workbook \x00\xff" * 10)
    [problem] = problems_of(path)
    assert problem.row == 0
    assert "엑셀" in problem.message and "roster.xlsx" in problem.message


@pytest.mark.parametrize("name", ["roster.xls", "roster.txt", "roster"])
def test_other_file_types_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"whatever")
    [problem] = problems_of(path)
    assert problem.row == 0
    assert ".xlsx" in problem.message


@pytest.mark.parametrize(("raw", "expected"), [
    ("01012345678", "010-1234-5678"),
    ("010.1234.5678", "010-1234-5678"),
    ("+82 10 1234 5678", "010-1234-5678"),
    ("+82 (0)10-1234-5678", "010-1234-5678"),
    ("011-123-4567", "011-123-4567"),
    ("0212345678", "02-1234-5678"),
    ("070-1234-5678", "070-1234-5678"),
])
def test_phone_numbers_are_normalised(tmp_path: Path, raw: str, expected: str) -> None:
    path = write_csv(tmp_path / "roster.csv", [
        ["이름", "아이디", "역할", "과정", "전화"],
        ["홍길동", "hong", "학습자", "ai101", raw],
    ])
    [person] = read_roster(path, COURSES)
    assert person.phone == expected


@pytest.mark.parametrize("raw", ["010-123-456", "1234", "010-1234-5678-9", "전화 없음"])
def test_invalid_phone_numbers_are_reported(tmp_path: Path, raw: str) -> None:
    path = write_csv(tmp_path / "roster.csv", [
        ["이름", "아이디", "역할", "과정", "전화"],
        ["홍길동", "hong", "학습자", "ai101", raw],
    ])
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (2, "전화")
