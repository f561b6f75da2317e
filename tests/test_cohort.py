"""The cohort store and the `donghaeng cohort` / settings front door (no hub needed)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from donghaeng.common.cohort import Cohort, PasswordPolicyError, write_password_file
from donghaeng.common.roster import Person
from donghaeng.common.settings import SettingsError, load_settings

KIM = Person(login="kimhaneul", name="김하늘", role="learner", courses=("ai-basics",))
LEE = Person(login="leesumin", name="이수민", role="trainer", courses=("ai-basics", "ttt"))
ROSTER = "이름,아이디,역할,과정\n김하늘,kimhaneul,학습자,ai-basics\n이수민,leesumin,강사,ai-basics ttt\n"


@pytest.fixture
def cohort(tmp_path) -> Cohort:
    return Cohort(tmp_path / "state" / "cohort.sqlite")


def test_import_creates_accounts_with_one_time_passwords(cohort):
    report = cohort.import_people([KIM, LEE])
    assert report.created == ["kimhaneul", "leesumin"]
    assert set(report.initial_passwords) == {"kimhaneul", "leesumin"}
    account = cohort.verify("kimhaneul", report.initial_passwords["kimhaneul"])
    assert account is not None and account.must_change and account.person == KIM
    assert "kimhaneul" not in account.password_hash  # stored hashed, never in clear
    assert report.initial_passwords["kimhaneul"] not in account.password_hash


def test_reimport_is_idempotent_and_keeps_passwords(cohort):
    first = cohort.import_people([KIM, LEE])
    again = cohort.import_people([KIM, LEE])
    assert again.unchanged == ["kimhaneul", "leesumin"] and not again.created and not again.updated
    moved = Person(login="kimhaneul", name="김하늘", role="learner", courses=("ai-basics", "ttt"))
    changed = cohort.import_people([moved])
    assert changed.updated == ["kimhaneul"] and not changed.initial_passwords
    assert cohort.get("kimhaneul").person.courses == ("ai-basics", "ttt")
    assert cohort.verify("kimhaneul", first.initial_passwords["kimhaneul"]) is not None


def test_wrong_or_unknown_login_is_refused(cohort):
    cohort.import_people([KIM])
    assert cohort.verify("kimhaneul", "wrong-password") is None
    assert cohort.verify("nobody", "whatever") is None


def test_password_policy_and_change(cohort):
    cohort.import_people([KIM])
    with pytest.raises(PasswordPolicyError, match="8자 이상"):
        cohort.set_password("kimhaneul", "a1b2", min_length=8)
    with pytest.raises(PasswordPolicyError, match="섞어"):
        cohort.set_password("kimhaneul", "12345678", min_length=8)
    cohort.set_password("kimhaneul", "spring-2026", min_length=8)
    account = cohort.verify("kimhaneul", "spring-2026")
    assert account is not None and not account.must_change
    # a chosen password gets the slow hash; a generated one a salted hash (its randomness protects it)
    assert account.password_hash.startswith("hmac-sha256:$2b$")
    assert cohort.verify("kimhaneul", "spring-2027") is None
    fresh = cohort.reset_password("kimhaneul")
    reset = cohort.verify("kimhaneul", fresh)
    assert reset.must_change and reset.password_hash.startswith("sha512:")
    assert cohort.verify("kimhaneul", "spring-2026") is None and cohort.verify("kimhaneul", fresh[:-1]) is None


def test_password_file_is_readable_by_root_only(tmp_path):
    path = write_password_file(tmp_path / "pw", {"kimhaneul": "abcd-efgh-2345"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "kimhaneul,abcd-efgh-2345" in path.read_text(encoding="utf-8-sig")


def test_database_is_private(cohort):
    assert stat.S_IMODE(cohort.db_path.stat().st_mode) == 0o600


# -- the CLI, as an admin runs it --------------------------------------------------------------

@pytest.fixture
def settings_file(tmp_path) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(
        f'[lab]\ndata_dir = "{tmp_path / "data"}"\n'
        '[[courses]]\nid = "ai-basics"\ntitle = "모두를 위한 AI 기초"\n'
        '[[courses]]\nid = "ttt"\ntitle = "TTT 강사 과정"\n', encoding="utf-8")
    return path


def donghaeng(settings_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DONGHAENG_SETTINGS": str(settings_file), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "donghaeng", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_cli_imports_excel_csv_encodings(settings_file, tmp_path, encoding):
    roster = tmp_path / "roster.csv"
    roster.write_bytes(ROSTER.encode(encoding))
    result = donghaeng(settings_file, "cohort", "import", str(roster))
    assert result.returncode == 0, result.stderr
    assert "새 계정 2명" in result.stdout
    again = donghaeng(settings_file, "cohort", "import", str(roster))
    assert "새 계정 0명" in again.stdout and "그대로 2명" in again.stdout
    listing = donghaeng(settings_file, "cohort", "list")
    assert "김하늘" in listing.stdout and "이수민" in listing.stdout


def test_cli_rejects_a_broken_roster_without_applying_any_row(settings_file, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER + "박지영,kimhaneul,학습자,ai-basics\n최은정,choi,요리사,ai-basics\n",
                      encoding="utf-8")
    result = donghaeng(settings_file, "cohort", "import", str(roster))
    assert result.returncode == 1
    assert "4행" in result.stderr and "5행" in result.stderr
    assert "아무것도 바꾸지 않았어요" in result.stderr
    settings = load_settings(settings_file)
    assert Cohort(settings.paths.cohort_db).accounts() == []  # the valid rows were not applied either


def test_cli_reports_undecodable_roster(settings_file, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_bytes(b"\xff\xfe\x00garbage\x00\x81\x82")
    result = donghaeng(settings_file, "cohort", "import", str(roster))
    assert result.returncode == 1 and "CP949" in result.stderr


def test_settings_typo_is_reported_with_its_place(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text('[lab]\nprot = 8000\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="lab.prot"):
        load_settings(path)
    result = donghaeng(path, "status")
    assert result.returncode == 2 and "lab.prot" in result.stderr


def test_help_is_bilingual():
    result = subprocess.run([sys.executable, "-m", "donghaeng", "--help"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert "허브를 시작해요" in result.stdout and "Start the hub" in result.stdout


def test_demo_roster_matches_the_default_settings():
    from donghaeng.deploy.provision import DEMO_ROSTER
    from donghaeng.common.roster import read_roster

    settings = load_settings()  # hub/lab.toml as shipped
    people = read_roster(DEMO_ROSTER, [c.id for c in settings.courses])
    assert {p.role for p in people} == {"learner", "trainer", "admin"}
    assert {c for p in people for c in p.courses} == {"ai-basics", "ttt"}
