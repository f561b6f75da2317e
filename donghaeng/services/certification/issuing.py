"""Issuing and revoking certificates: the eligibility check, the PDF, the signed credential and the gate.

These functions read root-only files (cohort, gradebooks, signing key): they run in the ``donghaeng
cert`` command and in hub services that run as root, never in a learner's server.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime
from pathlib import Path

from donghaeng.common.cohort import Cohort
from donghaeng.common.settings import Settings
from donghaeng.services.certification import credential as vc
from donghaeng.services.certification.eligibility import evaluate
from donghaeng.services.certification.gate import close_gate, open_gate
from donghaeng.services.certification.pdf import render
from donghaeng.services.certification.policy import CertificationError, Level, load_policy
from donghaeng.services.certification.store import Certificate, Store, now, write_atomic

SERIAL_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
STAFF_ROLES = ("trainer", "admin")


def pdf_path(settings: Settings, serial: str) -> Path:
    return settings.paths.root / "certificates" / "pdf" / f"{serial}.pdf"


def with_files(settings: Settings, cert: Certificate) -> Certificate:
    return dataclasses.replace(cert, pdf_path=pdf_path(settings, cert.serial),
                               credential_path=vc.credential_file(settings, cert.serial))


def _check_staff(settings: Settings, actor: str, what: str) -> None:
    """Refuse when *actor* is a learner in the cohort (only trainers and admins issue or revoke)."""
    account = Cohort(settings.paths.cohort_db).get(actor)
    if account is not None and account.person.role not in STAFF_ROLES:
        raise CertificationError(f"학습자 계정({actor})은 수료증을 {what}할 수 없어요. 트레이너에게 부탁해 주세요.")


def _new_serial(store: Store) -> str:
    while True:
        serial = f"DH-{datetime.now(UTC).year}-" + "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(8))
        if store.certificate(serial) is None:
            return serial


def _open_gates(settings: Settings, cert: Certificate, level: Level, actor: str) -> None:
    for course in level.unlocks:
        open_gate(settings, cert.login, course, actor=actor, level=level.id)


def issue(settings: Settings, login: str, level: str, issued_by: str) -> Certificate:
    """Issue *level* to *login* when the policy allows it: PDF, signed credential, gate, audit entry.

    Issuing a level the learner already holds returns the existing certificate (and re-applies the gate).
    """
    store = Store.of(settings)
    _check_staff(settings, issued_by, "발급")
    policy = load_policy(settings)
    chosen = policy.level(level)
    held = [c for c in store.certificates(login) if c.level == chosen.id and not c.revoked]
    if held:
        _open_gates(settings, held[0], chosen, issued_by)
        return with_files(settings, held[0])
    found = evaluate(settings, login)
    if not found:
        raise CertificationError(f"'{login}' 계정이 명단에 없어요.")
    status = found[0]
    eligibility = status.eligibility[chosen.id]
    if not eligibility.eligible:
        reasons = "\n".join(f"  - {m}" for m in eligibility.missing)
        raise CertificationError(f"{status.name}({login})님은 아직 '{chosen.name}' 단계를 받을 수 없어요:\n{reasons}")

    key = vc.ensure_key(settings)
    issued_at = now()
    serial = _new_serial(store)
    with store.connect() as db:
        index = store.add_certificate(db, serial, login, status.name, chosen.id, issued_at, issued_by)
        document = vc.build_credential(
            settings, serial=serial, name=status.name, level_id=chosen.id, level_name=chosen.name,
            description=chosen.description, issued_at=issued_at, status_index=index,
            issuer=vc.did_for(key.public_key()))
        vc.write_public(vc.credential_file(settings, serial), vc.sign(document, key, issued_at))
        write_atomic(pdf_path(settings, serial), render(
            name=status.name, level=chosen.name, description=chosen.description, issued_at=issued_at,
            issuer=settings.certification.issuer_name, serial=serial,
            verify_url=vc.verify_page_url(settings, serial)))
        Store.log(db, issued_by, "issue", login=login, level=chosen.id, serial=serial)
    if not vc.status_list_file(settings).exists():
        vc.publish_status_list(settings, key, store.revoked_indices(), issued_at)
    cert = store.certificate(serial)
    assert cert is not None
    _open_gates(settings, cert, chosen, issued_by)
    return with_files(settings, cert)


def revoke(settings: Settings, serial: str, revoked_by: str, reason: str) -> None:
    """Revoke a certificate: the status list marks it, and courses it alone unlocked close again."""
    store = Store.of(settings)
    _check_staff(settings, revoked_by, "취소")
    if not reason.strip():
        raise CertificationError("취소 사유를 적어 주세요. 감사 기록에 남아요.")
    cert = store.certificate(serial)
    if cert is None:
        raise CertificationError(f"'{serial}' 일련번호의 수료증이 없어요.")
    if cert.revoked:
        return
    at = now()
    with store.connect() as db:
        db.execute("UPDATE certificates SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE serial = ?",
                   (at, revoked_by, reason, serial))
        Store.log(db, revoked_by, "revoke", login=cert.login, level=cert.level, serial=serial, detail=reason)
    vc.publish_status_list(settings, vc.ensure_key(settings), store.revoked_indices(), at)
    policy = load_policy(settings)
    still_held = {c.level for c in store.certificates(cert.login) if not c.revoked}
    still_open = {course for lv in policy.levels if lv.id in still_held for course in lv.unlocks}
    level = policy.level(cert.level)
    for course in level.unlocks:
        if course not in still_open:
            close_gate(settings, cert.login, course, actor=revoked_by, level=level.id)
