"""Certification: policy, eligibility from real gradebooks, the TTT gate on a real hub, PDF and signed credentials.

The credential is also checked by an independent path: PyNaCl (libsodium) instead of ``cryptography``,
the standard library's sorted-key JSON instead of ``rfc8785`` (the same bytes as RFC 8785 for documents
without floats, like ours), and a hand-written base58 decoder.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import unicodedata
import warnings
from unittest import mock
from pathlib import Path

import httpx
import nacl.exceptions
import nacl.signing
import pypdfium2 as pdfium
import pytest
import zxingcpp
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from donghaeng.services.certification import (CertificationError, Store, TeachBackRecord, evaluate, issue, load_policy,
                                     verify_credential)
from donghaeng.services.certification import credential as vc
from donghaeng.services.certification.eligibility import Score, calibration_standings, check_level
from donghaeng.services.certification.issuing import pdf_path
from donghaeng.services.certification.pdf import printable, render
from donghaeng.services.certification.policy import AssignmentRule
from donghaeng.common.cohort import Cohort
from donghaeng.services.dashboard.calibration import load_sets
from donghaeng.grading.nbgrader_auth import CohortAuthPlugin
from donghaeng.common.roster import Person
from donghaeng.common.settings import Course, Lab, Settings
from hubclient import HubUser
from labharness import ARTIFACTS, running_lab
from test_browser import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parent.parent
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
PAGE_W_PT = 297 / 25.4 * 72
INNER_BORDER_PT = 14 / 25.4 * 72
AI_BASICS = ["m1-first-steps", "m2-work-smarter", "m3-prompting", "m4-responsible-ai", "m5-keep-growing"]
EMOJI_NAME = "김 하늘 🌸👩‍💻"
XSS_NAME = "<script>alert(1)</script>박"
PEOPLE = {
    "grad": (EMOJI_NAME, "learner", "ai-basics"),
    "struggler": ("이수민", "learner", "ai-basics"),
    "pending": ("박지영", "learner", "ai-basics"),
    "xss": (XSS_NAME, "learner", "ai-basics"),
    "trainer": ("최은정", "trainer", "ai-basics"),
    "ttt_trainer": ("정미경", "trainer", "ttt"),
}


# -- the independent verifier ----------------------------------------------------------------
def b58decode(text: str) -> bytes:
    number = 0
    for ch in text:
        number = number * 58 + B58.index(ch)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def sorted_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def independently_verified(secured: dict) -> bool:
    """eddsa-jcs-2022 by hand: hash(proof config) || hash(document), Ed25519 over it, did:key resolved."""
    proof = dict(secured["proof"])
    signature = b58decode(proof.pop("proofValue")[1:])
    document = {k: v for k, v in secured.items() if k != "proof"}
    proof["@context"] = document["@context"]
    data = hashlib.sha256(sorted_json(proof)).digest() + hashlib.sha256(sorted_json(document)).digest()
    multicodec = b58decode(proof["verificationMethod"].split("#")[0].removeprefix("did:key:z"))
    assert multicodec[:2] == b"\xed\x01", "not an Ed25519 did:key"
    try:
        nacl.signing.VerifyKey(multicodec[2:]).verify(data, signature)
        return True
    except nacl.exceptions.BadSignatureError:
        return False


# -- fast checks without a hub ---------------------------------------------------------------
@pytest.fixture
def offline(tmp_path) -> Settings:
    return Settings(lab=Lab(data_dir=tmp_path / "data"),
                    courses=[Course(id="ai-basics", title="AI 기초"), Course(id="ttt", title="TTT")])


def signed_credential(settings: Settings, key=None, name: str = "김하늘") -> dict:
    key = key or vc.ensure_key(settings)
    document = vc.build_credential(settings, serial="DH-2026-ABCDEFGH", name=name, level_id="ai-basics",
                                   level_name="AI 기초 수료", description="", issued_at="2026-11-25T10:00:00Z",
                                   status_index=3, issuer=vc.did_for(key.public_key()))
    return vc.sign(document, key, "2026-11-25T10:00:00Z")


def test_shipped_policy_has_the_three_levels(offline):
    policy = load_policy(offline)
    assert [lv.name for lv in policy.levels] == ["AI 기초 수료", "TTT 예비강사", "공인 AI 강사"]
    assert policy.level("AI 기초 수료").unlocks == ["ttt"]
    assert policy.level("instructor").min_calibration_kappa == 0.6


@pytest.mark.parametrize(("text", "expected"), [
    ("[[levels]]\nid='a'\nname='A'\ncourse='ai-basics'\ncolour='red'\n", "colour"),
    ("[[levels]]\nid='b'\nname='B'\ncourse='ai-basics'\nprerequisite='a'\n", "선수 단계 'a'"),
    ("[[levels]]\nid='a'\nname='A'\ncourse='nope'\n", "과정 'nope'가 lab.toml에 없어요"),
    ("[[levels]]\nid='A B'\nname='A'\ncourse='ai-basics'\n", "영문 소문자"),
    ("[[levels]\n", "문법"),
])
def test_a_broken_policy_is_explained_in_korean(tmp_path, text, expected):
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    settings = Settings(lab=Lab(data_dir=tmp_path), courses=[Course(id="ai-basics", title="AI")],
                        certification={"policy": path})
    with pytest.raises(CertificationError, match=re.escape(expected)):
        load_policy(settings)


def test_shipped_policy_requires_calibration_and_an_observed_teachback(offline):
    policy = load_policy(offline)
    instructor = policy.level("공인 AI 강사")
    assert instructor.min_teachback_checklist and instructor.min_teachback_checklist <= len(policy.teachback.checklist)
    assert policy.calibration.attempts == 3 and policy.calibration.samples_per_attempt >= 10
    assert policy.calibration.rubrics == ["m1-reflection"]
    # the checklist the trainer ticks is T4's structure checklist, which the candidate prepares with
    t4 = (REPO / "assignments" / "ttt" / "source" / "t4-teach-back" / "t4-teach-back.ipynb").read_text(encoding="utf-8")
    assert "시범 강의" in t4 and "공인 AI 강사" in t4


def test_calibration_teachback_attendance_and_points_are_explained(offline):
    policy = load_policy(offline)
    instructor = policy.level("공인 AI 강사")
    store = Store.of(offline)
    store.record_calibration("kim", "m1-reflection", 1, 0.42, ["s01"], [], recorded_by="kim")
    store.record_calibration("kim", "m1-reflection", 2, 0.31, ["s02"], [], recorded_by="kim")
    maxima = {"t3-grading-calibration": 10.0, "t4-teach-back": 10.0}
    scores = {name: Score(name, 9.0, 10.0) for name in maxima}
    standings = calibration_standings(store, policy, "kim", load_sets())
    assert [(st.best, st.used, st.left) for st in standings] == [(0.42, 2, 1)]  # the best attempt counts
    watched = TeachBackRecord("kim", "ttt", "2027-04-09", True, ("goal", "why", "demo", "practice", "check", "plain"),
                              6, 8, "", "2027-04-09T10:00:00Z", "trainer")
    found = check_level(instructor, maxima, scores, issued={"ai-basics", "ttt-candidate"}, attendance=0,
                        calibration=standings, teachback=watched, policy=policy)
    assert found.missing == ["채점 맞추기 일치도(카파)가 0.6보다 낮아요: 모듈 1 문제 4 「생각 나누기」 채점 "
                             "(가장 높은 값 0.42, 남은 기회 1번)"]
    store.record_calibration("kim", "m1-reflection", 3, 0.71, ["s03"], [], recorded_by="kim")
    passed = calibration_standings(store, policy, "kim", load_sets())
    assert check_level(instructor, maxima, scores, issued={"ttt-candidate"}, attendance=0, calibration=passed,
                       teachback=watched, policy=policy).eligible
    assert calibration_standings(store, policy, "lee", load_sets())[0].best is None
    # without an observed teach-back, or absent, or too few checklist items: not certified
    for record, message in ((None, "시범 강의 관찰 기록이 없어요: 트레이너가 시범 강의를 보고 대시보드에 적어야 해요"),
                            (dataclasses.replace(watched, attended=False, checked=(), score=0),
                             "시범 강의(2027-04-09)에 출석하지 않았어요"),
                            (dataclasses.replace(watched, checked=("goal",), score=1),
                             "시범 강의 점검표가 6개보다 적어요 (지금 1/8개)")):
        found = check_level(instructor, maxima, scores, issued={"ttt-candidate"}, attendance=0, calibration=passed,
                            teachback=record, policy=policy)
        assert found.missing == [message]
    strict = instructor.model_copy(update={
        "min_attendance": 6, "assignments": [AssignmentRule(name="t4-teach-back", min_points=9.5)]})
    none_yet = [dataclasses.replace(passed[0], best=None, used=0)]
    found = check_level(strict, maxima, scores, issued={"ttt-candidate"}, attendance=4, calibration=none_yet,
                        teachback=watched, policy=policy)
    assert found.missing == ["t4-teach-back 점수가 9.5점 미만이에요 (지금 9점)", "출석이 6회보다 적어요 (지금 4회)",
                             "채점 맞추기를 아직 하지 않았어요: 모듈 1 문제 4 「생각 나누기」 채점 (기회 3번)"]


def test_teachback_records_are_kept_and_the_latest_counts(offline):
    store = Store.of(offline)
    assert store.teachback("kim", "ttt") is None
    first = TeachBackRecord("kim", "ttt", "2027-04-02", False, (), 0, 8, "", "2027-04-02T10:00:00Z", "trainer")
    store.record_teachback(first)
    later = dataclasses.replace(first, session_date="2027-04-09", attended=True, checked=("goal",), score=1,
                                note="확인 질문이 좋았어요")
    Store.of(offline).record_teachback(later)
    assert Store.of(offline).teachback("kim", "ttt") == later  # a new connection: it is on disk
    assert store.teachback("kim", "ai-basics") is None
    assert [e.action for e in store.audit("kim")] == ["teachback", "teachback"]


@pytest.mark.parametrize(("extra", "expected"), [
    ("min_teachback_checklist = 2\n", "[teachback] 점검표도 있어야 해요"),
    ("min_teachback_checklist = 3\n[teachback]\nchecklist = [{ id = 'a', text = '목표' }]\n", "항목 수(1개)보다 많아요"),
])
def test_a_teachback_rule_needs_its_checklist(tmp_path, extra, expected):
    path = tmp_path / "policy.toml"
    path.write_text("[[levels]]\nid='a'\nname='A'\ncourse='ai-basics'\n" + extra, encoding="utf-8")
    settings = Settings(lab=Lab(data_dir=tmp_path), courses=[Course(id="ai-basics", title="AI")],
                        certification={"policy": path})
    with pytest.raises(CertificationError, match=re.escape(expected)):
        load_policy(settings)


def test_a_granted_course_survives_a_roster_reimport(tmp_path):
    cohort = Cohort(tmp_path / "cohort.sqlite")
    kim = Person(login="kim", name="김하늘", role="learner", courses=("ai-basics",))
    cohort.import_people([kim])
    assert cohort.grant_course("kim", "ttt", "certification:ai-basics")
    assert not cohort.grant_course("kim", "ttt", "certification:ai-basics")  # idempotent
    report = cohort.import_people([kim])  # the trainer re-imports the same roster
    assert report.unchanged == ["kim"] and cohort.get("kim").person.courses == ("ai-basics", "ttt")
    assert cohort.withdraw_course("kim", "ttt") and not cohort.withdraw_course("kim", "ttt")
    assert cohort.get("kim").person.courses == ("ai-basics",)
    cohort.grant_course("kim", "ai-basics", "certification:x")
    cohort.withdraw_course("kim", "ai-basics")
    assert cohort.get("kim").person.courses == ("ai-basics",)  # a roster enrolment is never withdrawn


def test_credential_verifies_independently_and_tampering_fails(offline):
    secured = signed_credential(offline)
    assert independently_verified(secured)
    assert secured["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert vc.key_path(offline).stat().st_mode & 0o777 == 0o600
    for change in (lambda c: c["credentialSubject"]["identifier"][0].update(identityHash="다른 사람"),
                   lambda c: c.update(name="공인 AI 강사"),
                   lambda c: c["credentialStatus"].update(statusListIndex="4")):
        forged = copy.deepcopy(secured)
        change(forged)
        assert not independently_verified(forged)
        with pytest.raises(vc.ProofError, match="서명이 맞지 않아요"):
            vc.check_proof(forged)


def test_a_credential_signed_with_another_key_is_not_ours(offline):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    vc.ensure_key(offline)
    forged = signed_credential(offline, key=Ed25519PrivateKey.generate())
    assert independently_verified(forged)  # a valid signature, but by someone else
    result = verify_credential(offline, forged)
    assert not result.ok and "동행랩이 발급한 수료증이 아니에요" in result.reason
    assert not verify_credential(offline, {"type": ["OpenBadgeCredential"]}).ok
    assert "JSON이 아니에요" in verify_credential(offline, "not json").reason


def test_status_list_bits(offline):
    encoded = vc.encode_status_list({0, 9, 131071})
    assert [vc.status_bit(encoded, i) for i in (0, 1, 9, 131070, 131071)] == [True, False, True, False, True]


NAMES = {
    "hangul": "김하늘",
    "spaces": "김  하늘   Kim Ha-neul",
    "emoji": "하늘 🌸👩‍💻✨ 김",
    "long": "바다처럼 넓은 마음을 가진 아주 긴 이름의 학습자 " * 3,  # 84 characters
}


@pytest.mark.parametrize("key", NAMES)
def test_certificate_pdf_lays_out_any_name(key):
    name = NAMES[key]
    url = "http://127.0.0.1:8000/services/certificates/verify/DH-2026-ABCDEFGH"
    data = render(name=name, level="AI 기초 수료", description="다섯 과제를 모두 마쳤어요.",
                  issued_at="2026-11-25T10:00:00Z", issuer="동행랩", serial="DH-2026-ABCDEFGH", verify_url=url)
    assert b"NanumGothic" in data  # the Korean font is embedded, not referenced
    page = pdfium.PdfDocument(data)[0]
    text_page = page.get_textpage()
    text = text_page.get_text_range()
    squeezed = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", printable(name)) in squeezed
    assert "DH-2026-ABCDEFGH" in text and "2026년 11월 25일" in text and "동행랩" in text
    assert not any(unicodedata.category(ch) == "So" for ch in text)  # emoji dropped, never a tofu box
    for i in range(text_page.count_chars()):  # nothing runs off the certificate's inner border
        left, _bottom, right, _top = text_page.get_charbox(i)
        assert INNER_BORDER_PT - 1 <= left and right <= PAGE_W_PT - INNER_BORDER_PT + 1
    image = page.render(scale=2).to_pil()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / f"certificate-{key}.png")
    grey = image.convert("L")
    dark = sum(grey.histogram()[:128])
    assert 0.01 < dark / (grey.width * grey.height) < 0.5  # printed, not blank, not solid
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [url]


# -- the real lab: gradebooks, gate, service -------------------------------------------------
def register_assignment(settings: Settings, course: str, assignment: str) -> None:
    """Record an assignment's graded cells as ``nbgrader generate_assignment`` does (a shortcut for speed)."""
    source = REPO / "assignments" / course / "source" / assignment
    with Gradebook(f"sqlite:///{settings.paths.course_dir(course) / 'gradebook.db'}", course_id=course) as gb:
        gb.update_or_create_assignment(assignment)
        for path in sorted(source.glob("*.ipynb")):
            gb.update_or_create_notebook(path.stem, assignment)
            for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
                meta = cell["metadata"].get("nbgrader", {})
                if meta.get("grade"):
                    gb.update_or_create_grade_cell(meta["grade_id"], path.stem, assignment,
                                                   max_score=meta["points"], cell_type=cell["cell_type"])


def write_grades(settings: Settings, course: str, login: str, percents: dict[str, float],
                 pending_manual: tuple[str, ...] = ()) -> None:
    """Scores as nbgrader stores them after autograde (and manual grading), through its Gradebook API."""
    path = settings.paths.course_dir(course) / "gradebook.db"
    with Gradebook(f"sqlite:///{path}", course_id=course) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader 0.9.6's add_submission on SQLAlchemy 2.1: harmless
        gb.update_or_create_student(login)
        for assignment, percent in percents.items():
            try:
                submission = gb.find_submission(assignment, login)
            except MissingEntry:
                submission = gb.add_submission(assignment, login)
            for notebook in submission.notebooks:
                for i, grade in enumerate(notebook.grades):
                    grade.auto_score = grade.max_score * percent / 100
                    grade.needs_manual_grade = assignment in pending_manual and i == 0
            gb.db.commit()


@pytest.fixture(scope="module")
def cert_lab():
    with running_lab(PEOPLE) as lab:  # certification is on by default
        lab.cli("course", "release", "ai-basics", AI_BASICS[0])  # real releases: the courses learners see
        lab.cli("course", "release", "ttt", "t1-class-design")
        for assignment in AI_BASICS[1:]:
            register_assignment(lab.settings, "ai-basics", assignment)
        full = dict.fromkeys(AI_BASICS, 100.0)
        write_grades(lab.settings, "ai-basics", lab.logins["grad"], full)
        write_grades(lab.settings, "ai-basics", lab.logins["xss"], full)
        write_grades(lab.settings, "ai-basics", lab.logins["struggler"], {**full, "m3-prompting": 45.0})
        write_grades(lab.settings, "ai-basics", lab.logins["pending"], full, pending_manual=("m4-responsible-ai",))
        yield lab


@pytest.fixture(scope="module")
def grad(cert_lab) -> HubUser:
    user = HubUser.logged_in(cert_lab, "grad")
    user.spawn()
    return user


def public(lab, path: str, **kwargs) -> httpx.Response:
    """A request through the hub's proxy with no login at all, as anyone holding the QR code would."""
    return httpx.request(kwargs.pop("method", "GET"), f"{lab.url}/services/certificates/{path}", timeout=30,
                         **kwargs)


def groups_of(user: HubUser) -> list[str]:
    return user.api("GET", f"/hub/api/users/{user.name}").json()["groups"]


def courses_of(lab, user: HubUser) -> list[str]:
    """The courses nbgrader lists for the learner: its hub auth plugin, run with the learner's own token."""
    env = {"JUPYTERHUB_USER": user.name, "JUPYTERHUB_API_TOKEN": user.token, "JUPYTERHUB_API_URL": f"{lab.url}/hub/api"}
    with mock.patch.dict(os.environ, env):
        return sorted(CohortAuthPlugin().get_student_courses("*"))


def status_of(lab, key: str):
    (found,) = evaluate(lab.settings, lab.logins[key])
    return found


@pytest.mark.slow
def test_status_explains_in_korean_what_is_missing(cert_lab):
    ready = status_of(cert_lab, "grad").eligibility["ai-basics"]
    assert ready.eligible and ready.missing == []
    low = status_of(cert_lab, "struggler").eligibility["ai-basics"]
    assert not low.eligible
    assert low.missing == ["m3-prompting 점수가 60% 미만이에요 (지금 45%)"]
    pending = status_of(cert_lab, "pending").eligibility["ai-basics"]
    assert pending.missing == ["m4-responsible-ai 과제에 트레이너가 손으로 채점할 답이 남아 있어요"]
    nxt = status_of(cert_lab, "grad").eligibility["ttt-candidate"]
    assert "먼저 'AI 기초 수료' 단계를 받아야 해요" in nxt.missing
    assert "t2-running-the-lab 과제가 아직 배포되지 않았어요" in nxt.missing
    shown = cert_lab.cli("cert", "status").stdout
    assert "m3-prompting" in shown and cert_lab.logins["struggler"] in shown


@pytest.mark.slow
def test_issue_is_refused_when_not_eligible_or_asked_by_a_learner(cert_lab, grad):
    with pytest.raises(CertificationError, match="m3-prompting 점수가 60% 미만"):
        issue(cert_lab.settings, cert_lab.logins["struggler"], "ai-basics", cert_lab.logins["trainer"])
    with pytest.raises(CertificationError, match="학습자 계정"):
        issue(cert_lab.settings, cert_lab.logins["grad"], "ai-basics", cert_lab.logins["struggler"])
    refused = cert_lab.cli("cert", "issue", cert_lab.logins["struggler"], "AI 기초 수료", check=False)
    assert refused.returncode == 1 and "m3-prompting" in refused.stderr
    # The learner's own account cannot run the issue path at all (state is root-only) ...
    as_learner = subprocess.run(
        ["runuser", "-u", grad.name, "--", sys.executable, "-m", "donghaeng", "cert", "issue", grad.name,
         "ai-basics", "--settings", str(cert_lab.settings_path)], capture_output=True, text=True, timeout=120)
    assert as_learner.returncode == 1 and "관리자" in as_learner.stderr
    # ... nor open the gate for themselves through the hub API.
    r = grad.api("POST", "/hub/api/groups/nbgrader-ttt/users", json={"users": [grad.name]})
    assert r.status_code == 403
    assert Store.of(cert_lab.settings).certificates(grad.name) == []
    assert "nbgrader-ttt" not in groups_of(grad)


@pytest.mark.slow
def test_passing_course_one_opens_ttt_and_revoking_closes_it(cert_lab, grad):
    settings = cert_lab.settings
    assert courses_of(cert_lab, grad) == ["ai-basics"]
    out = cert_lab.cli("cert", "issue", grad.name, "AI 기초 수료").stdout
    serial = re.search(r"DH-\d{4}-[0-9A-Z]{8}", out).group(0)

    # The gate: hub group and the nbgrader course list of the running server, the cohort and the gradebook.
    assert "nbgrader-ttt" in groups_of(grad)
    assert courses_of(cert_lab, grad) == ["ai-basics", "ttt"]
    assert "ttt" in Cohort(settings.paths.cohort_db).get(grad.name).person.courses
    with Gradebook(f"sqlite:///{settings.paths.course_dir('ttt') / 'gradebook.db'}", course_id="ttt") as gb:
        assert gb.find_student(grad.name).first_name == EMOJI_NAME
    # The cohort stays the source of truth: a fresh login (groups recomputed) keeps the course open ...
    again = HubUser.logged_in(cert_lab, "grad")
    assert "nbgrader-ttt" in groups_of(again)
    # ... and issuing again changes nothing.
    assert issue(settings, grad.name, "ai-basics", cert_lab.logins["trainer"]).serial == serial
    assert len(Store.of(settings).certificates(grad.name)) == 1

    # The PDF: page 1 rendered and read back.
    page = pdfium.PdfDocument(pdf_path(settings, serial))[0]
    text = page.get_textpage().get_text_range()
    assert printable(EMOJI_NAME) in text and serial in text and "AI 기초 수료" in text
    image = page.render(scale=2).to_pil()
    image.save(ARTIFACTS / "certificate-issued.png")
    (qr,) = zxingcpp.read_barcodes(image)
    assert qr.text == f"{cert_lab.url}/services/certificates/verify/{serial}"

    # The credential: served publicly, verified independently and by the lab's service.
    credential = public(cert_lab, f"credentials/{serial}.json").json()
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert independently_verified(credential)
    status_list = public(cert_lab, "status/1").json()
    assert independently_verified(status_list) and status_list["issuer"] == credential["issuer"]["id"]
    assert credential["credentialStatus"]["statusListCredential"] == f"{cert_lab.url}/services/certificates/status/1"
    checked = public(cert_lab, "verify", method="POST", json=credential).json()
    assert checked["ok"] and checked["name"] == EMOJI_NAME and checked["serial"] == serial
    page_html = httpx.get(qr.text, timeout=30)  # what the QR code opens
    assert page_html.status_code == 200 and "유효한 수료증이에요" in page_html.text and "김 하늘" in page_html.text
    tampered = copy.deepcopy(credential)
    tampered["credentialSubject"]["achievement"]["name"] = "공인 AI 강사"
    bad = public(cert_lab, "verify", method="POST", json=tampered).json()
    assert not bad["ok"] and "서명이 맞지 않아요" in bad["reason"]
    Path(ARTIFACTS / "credential.json").write_text(json.dumps(credential, ensure_ascii=False, indent=2), "utf-8")
    assert cert_lab.cli("cert", "verify", str(ARTIFACTS / "credential.json")).returncode == 0

    # Revocation: the status list says so, the verify page says so in Korean, and the gate closes.
    assert cert_lab.cli("cert", "revoke", serial, check=False).returncode != 0  # a reason is required
    cert_lab.cli("cert", "revoke", serial, "--reason", "채점 오류를 바로잡았어요")
    assert independently_verified(credential)  # the file itself still carries a good signature ...
    revoked = public(cert_lab, "verify", method="POST", json=credential).json()
    assert not revoked["ok"] and revoked["revoked"] and "취소된 수료증이에요" in revoked["reason"]
    assert "취소된 수료증이에요" in httpx.get(qr.text, timeout=30).text
    refused = cert_lab.cli("cert", "verify", str(ARTIFACTS / "credential.json"), check=False)
    assert refused.returncode == 1 and "취소된" in refused.stderr
    assert "nbgrader-ttt" not in groups_of(grad)
    assert courses_of(cert_lab, grad) == ["ai-basics"]
    assert "ttt" not in Cohort(settings.paths.cohort_db).get(grad.name).person.courses

    # Auditable: who did what, when, why; the log cannot be rewritten.
    actions = [(e.action, e.detail) for e in Store.of(settings).audit(grad.name)]
    assert [a for a, _ in actions] == ["issue", "gate-open", "gate-open", "revoke", "gate-close"]
    assert "hub: added" in actions[1][1] and actions[3][1] == "채점 오류를 바로잡았어요"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"), \
            Store.of(settings).connect() as db:
        db.execute("DELETE FROM audit")


@pytest.mark.slow
def test_names_are_escaped_on_the_verify_page(cert_lab):
    cert = issue(cert_lab.settings, cert_lab.logins["xss"], "ai-basics", cert_lab.logins["trainer"])
    page = public(cert_lab, f"verify/{cert.serial}")
    assert page.status_code == 200 and "유효한 수료증이에요" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;박" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    form = public(cert_lab, "verify", method="POST",
                  data={"credential": json.dumps({"type": ["OpenBadgeCredential"], "id": "<img src=x onerror=1>"})})
    assert "<img src=x" not in form.text and "서명(proof)이 없어요" in form.text
    unknown = public(cert_lab, "verify/DH-2026-ZZZZZZZZ")
    assert unknown.status_code == 404 and "발급 기록에 없는 일련번호" in unknown.text
    assert public(cert_lab, "credentials/..%2F..%2Fstate.json").status_code == 404


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_the_verify_page_shows_a_hostile_name_as_text_in_a_browser(cert_lab):
    sync_api = pytest.importorskip("playwright.sync_api")
    cert = issue(cert_lab.settings, cert_lab.logins["xss"], "ai-basics", cert_lab.logins["trainer"])
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ko-KR", viewport={"width": 900, "height": 800})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{cert_lab.url}/services/certificates/verify/{cert.serial}")
            assert page.locator("#holder").inner_text() == XSS_NAME
            assert "유효한 수료증이에요" in page.locator("#result").inner_text()
            page.screenshot(path=str(ARTIFACTS / "certificate-verify-page.png"), full_page=True)
            assert dialogs == [] and page.locator("script").count() == 0
        finally:
            browser.close()
