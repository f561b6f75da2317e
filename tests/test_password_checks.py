"""What a password check costs and accepts, counted (no hub needed; the hub tests are in
tests/test_hub_account_security.py)."""

from __future__ import annotations

import sqlite3
from collections import Counter

import bcrypt
import pytest

from donghaeng.common import cohort as cohort_module
from donghaeng.hub.auth import FailureBudget, too_many_failures
from donghaeng.common.cohort import Cohort
from donghaeng.common.roster import Person

CHOSEN = Person(login="kimhaneul", name="김하늘", role="learner", courses=("ai-basics",))
INITIAL = Person(login="leesumin", name="이수민", role="learner", courses=("ai-basics",))
LONG_KOREAN = "가" * 24 + "1"  # 73 bytes in UTF-8: one byte past what bcrypt reads


@pytest.fixture
def cohort_and_initial(tmp_path) -> tuple[Cohort, str]:
    """CHOSEN has chosen a password; INITIAL still has the initial one (returned)."""
    cohort = Cohort(tmp_path / "state" / "cohort.sqlite")
    report = cohort.import_people([CHOSEN, INITIAL])
    cohort.set_password(CHOSEN.login, "spring-2026", min_length=8)
    return cohort, report.initial_passwords[INITIAL.login]


@pytest.fixture
def cohort(cohort_and_initial) -> Cohort:
    return cohort_and_initial[0]


@pytest.fixture
def work(monkeypatch) -> Counter:
    """Count the slow (bcrypt) and fast (salted SHA-512) checks the cohort makes; both still run."""
    counts: Counter = Counter()

    def counted(name, real):
        def check(*args):
            counts[name] += 1
            return real(*args)
        return check

    monkeypatch.setattr(cohort_module.bcrypt, "checkpw", counted("bcrypt", bcrypt.checkpw))
    monkeypatch.setattr(cohort_module, "compare_token", counted("token", cohort_module.compare_token))
    return counts


def test_every_failed_login_costs_one_bcrypt_whatever_the_account(cohort_and_initial, work):
    cohort, initial = cohort_and_initial
    tries = {"unknown login": ("nobody", "whatever-123"),
             "initial password": (INITIAL.login, "abcd-efgh-2345"),
             "chosen password": (CHOSEN.login, "spring-2027")}
    for kind, (login, password) in tries.items():
        work.clear()
        assert cohort.verify(login, password) is None
        assert work == {"bcrypt": 1, "token": 1}, kind
    # the right initial password stays the cheap first login: no bcrypt at all
    work.clear()
    assert cohort.verify(INITIAL.login, initial) is not None
    assert work["bcrypt"] == 0


def test_a_korean_password_past_72_bytes_is_whole(cohort, work):
    assert len(LONG_KOREAN.encode()) == 73
    assert cohort.set_password(CHOSEN.login, LONG_KOREAN, min_length=8)
    assert cohort.verify(CHOSEN.login, LONG_KOREAN) is not None
    # bcrypt alone would read only the first 72 bytes and take this prefix as the same password
    work.clear()
    assert cohort.verify(CHOSEN.login, LONG_KOREAN[:-1]) is None
    assert work["bcrypt"] == 1


def test_hashes_from_before_pre_hashing_still_verify(cohort, work):
    legacy = bcrypt.hashpw(b"autumn-2025", bcrypt.gensalt(4)).decode()
    with sqlite3.connect(cohort.db_path) as db:
        db.execute("UPDATE accounts SET password_hash = ? WHERE login = ?", (legacy, CHOSEN.login))
    assert cohort.verify(CHOSEN.login, "autumn-2025") is not None
    work.clear()
    assert cohort.verify(CHOSEN.login, "autumn-2025" + "가" * 21) is None  # 74 bytes: no error, one bcrypt
    assert work["bcrypt"] == 1


def test_set_password_refuses_a_hash_that_is_no_longer_current(cohort):
    checked = cohort.get(CHOSEN.login).password_hash
    assert cohort.set_password(CHOSEN.login, "summer-2026", 8, replacing=checked)
    assert not cohort.set_password(CHOSEN.login, "winter-2026", 8, replacing=checked)
    assert cohort.verify(CHOSEN.login, "summer-2026") is not None


def test_a_reset_asks_the_hub_to_sign_out_and_a_change_clears_it(cohort):
    cohort.reset_password(CHOSEN.login)
    assert cohort.pending_sign_outs() == [CHOSEN.login]
    cohort.set_password(CHOSEN.login, "summer-2026", 8)
    assert cohort.pending_sign_outs() == []


def test_failure_budget_burst_then_one_per_interval():
    budget = FailureBudget(burst=3, interval=10.0, max_keys=100)
    for _ in range(3):
        assert budget.wait("kim", 0.0) == 0
        budget.spend("kim", 0.0)
    assert budget.wait("kim", 0.0) == pytest.approx(10.0)
    assert budget.wait("kim", 10.0) == 0 and budget.wait("lee", 0.0) == 0
    budget.refund("kim")
    assert budget.wait("kim", 0.0) == 0


def test_failure_budget_memory_is_bounded():
    budget = FailureBudget(burst=1, interval=60.0, max_keys=100)
    for i in range(10_000):
        budget.spend(f"made-up-{i}", 0.0)
    assert len(budget._whole_at) == 100
    assert budget.wait("made-up-9999", 0.0) > 0  # the latest keys are the ones kept


def test_throttle_message_is_korean_and_rounds_up():
    assert too_many_failures(1.2) == "비밀번호를 여러 번 틀려서 잠시 막아 두었어요. 2초 뒤에 다시 해 주세요."
    assert "2분 뒤에" in too_many_failures(61)
