"""Open Badges 3.0 credentials (W3C VC 2.0), signed with Ed25519 as ``eddsa-jcs-2022`` Data Integrity proofs.

The issuer is a ``did:key`` derived from the lab's Ed25519 key (generated on first start into
``state/``, mode 0600, never committed), so anyone can check a signature without asking the lab.
Revocation is a ``BitstringStatusListCredential`` the verification service serves; every credential
points at its bit with a ``BitstringStatusListEntry``.

Everything a verifier needs is public and lives in ``<data_dir>/certificates/public`` (readable by the
unprivileged verification service): the issuer's DID, the signed credentials and the status list.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import base58
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from donghaeng.common.settings import Settings
from donghaeng.services.certification.store import write_atomic

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CRYPTOSUITE = "eddsa-jcs-2022"
ED25519_MULTICODEC = b"\xed\x01"
STATUS_LIST_BITS = 131072  # the minimum size the Bitstring Status List spec asks for (group privacy)
SERIAL = re.compile(r"^DH-\d{4}-[2-9A-HJ-NP-Z]{8}$")
SERVICE_PREFIX = "/services/certificates"


class ProofError(ValueError):
    """The proof is missing, malformed or does not verify; the message is Korean."""


# -- where things are -------------------------------------------------------------------------
def key_path(settings: Settings) -> Path:
    return settings.paths.state / "certification-ed25519.pem"


def public_dir(settings: Settings) -> Path:
    return settings.paths.root / "certificates" / "public"


def credential_file(settings: Settings, serial: str) -> Path:
    return public_dir(settings) / "credentials" / f"{serial}.json"


def status_list_file(settings: Settings) -> Path:
    return public_dir(settings) / "status-1.json"


def issuer_file(settings: Settings) -> Path:
    return public_dir(settings) / "issuer.json"


def service_url(settings: Settings) -> str:
    """Public address of the verification service (what QR codes and credentials point at)."""
    base = settings.certification.public_url or settings.lab.public_url
    return base.rstrip("/") + SERVICE_PREFIX


def verify_page_url(settings: Settings, serial: str) -> str:
    return f"{service_url(settings)}/verify/{serial}"


def write_public(path: Path, data: dict) -> None:
    """Write a public JSON file atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2).encode(), mode=0o644)


# -- keys and did:key -------------------------------------------------------------------------
def multibase_key(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + base58.b58encode(ED25519_MULTICODEC + raw).decode()


def did_for(public: Ed25519PublicKey) -> str:
    return f"did:key:{multibase_key(public)}"


def public_key_from_did(verification_method: str) -> Ed25519PublicKey:
    """Resolve a ``did:key:z6Mk…#z6Mk…`` verification method to its Ed25519 key."""
    did = verification_method.split("#", 1)[0]
    if not did.startswith("did:key:z"):
        raise ProofError("서명한 키를 알 수 없어요 (did:key가 아니에요).")
    try:
        decoded = base58.b58decode(did[len("did:key:z"):])
    except ValueError as e:
        raise ProofError("서명한 키 표기가 잘못됐어요.") from e
    if not decoded.startswith(ED25519_MULTICODEC) or len(decoded) != 34:
        raise ProofError("서명한 키가 Ed25519 키가 아니에요.")
    return Ed25519PublicKey.from_public_bytes(decoded[2:])


def ensure_key(settings: Settings) -> Ed25519PrivateKey:
    """The lab's signing key; created on first use (root-only file) with the public issuer record."""
    path = key_path(settings)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
    else:
        key = Ed25519PrivateKey.generate()
        write_atomic(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    did = did_for(key.public_key())
    record = {"id": did, "name": settings.certification.issuer_name,
              "publicKeyMultibase": multibase_key(key.public_key())}
    if not issuer_file(settings).exists() or json.loads(issuer_file(settings).read_text("utf-8")) != record:
        write_public(issuer_file(settings), record)
    return key


def issuer_did(settings: Settings) -> str | None:
    """The lab's issuer DID from the public record; None before the first start."""
    try:
        return json.loads(issuer_file(settings).read_text(encoding="utf-8"))["id"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


# -- Data Integrity proof (eddsa-jcs-2022) ----------------------------------------------------
def _hash_data(document: dict, proof_config: dict) -> bytes:
    return (hashlib.sha256(rfc8785.dumps(proof_config)).digest()
            + hashlib.sha256(rfc8785.dumps(document)).digest())


def sign(document: dict, key: Ed25519PrivateKey, created: str) -> dict:
    """*document* with a ``DataIntegrityProof`` (cryptosuite eddsa-jcs-2022) by *key*."""
    did = did_for(key.public_key())
    proof = {"type": "DataIntegrityProof", "cryptosuite": CRYPTOSUITE, "created": created,
             "verificationMethod": f"{did}#{did.removeprefix('did:key:')}", "proofPurpose": "assertionMethod"}
    signature = key.sign(_hash_data(document, {**proof, "@context": document["@context"]}))
    return {**document, "proof": {**proof, "proofValue": "z" + base58.b58encode(signature).decode()}}


def check_proof(secured: dict[str, Any]) -> str:
    """Verify the proof of *secured*; returns the signer's DID, raises :class:`ProofError` otherwise."""
    proof = secured.get("proof")
    if not isinstance(proof, dict):
        raise ProofError("서명(proof)이 없어요. 동행랩이 발급한 수료증 파일 그대로인지 확인해 주세요.")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(f"지원하지 않는 서명 방식이에요 (DataIntegrityProof / {CRYPTOSUITE}만 확인해요).")
    if proof.get("proofPurpose") != "assertionMethod":
        raise ProofError("서명의 목적(proofPurpose)이 발급용이 아니에요.")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofError("서명 값(proofValue)이 잘못됐어요.")
    public = public_key_from_did(str(proof.get("verificationMethod", "")))
    document = {k: v for k, v in secured.items() if k != "proof"}
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in document:
        config["@context"] = document["@context"]
    try:
        public.verify(base58.b58decode(value[1:]), _hash_data(document, config))
    except (InvalidSignature, ValueError) as e:
        raise ProofError("서명이 맞지 않아요. 내용이 바뀌었거나 위조된 수료증이에요.") from e
    return did_for(public)


# -- status list ------------------------------------------------------------------------------
def encode_status_list(revoked: set[int]) -> str:
    bits = bytearray(STATUS_LIST_BITS // 8)
    for index in revoked:
        bits[index // 8] |= 0x80 >> (index % 8)  # index 0 is the left-most bit of the first byte
    return "u" + base64.urlsafe_b64encode(gzip.compress(bytes(bits))).decode().rstrip("=")


def status_bit(encoded_list: str, index: int) -> bool:
    data = encoded_list[1:] if encoded_list.startswith("u") else encoded_list
    bits = gzip.decompress(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    if index >= len(bits) * 8:
        raise ProofError("취소 목록에서 이 수료증의 자리를 찾지 못했어요.")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def status_list_url(settings: Settings) -> str:
    return f"{service_url(settings)}/status/1"


def publish_status_list(settings: Settings, key: Ed25519PrivateKey, revoked: set[int], at: str) -> dict:
    """Sign and publish the revocation list with the bits of *revoked* set."""
    url = status_list_url(settings)
    document = {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": did_for(key.public_key()),
        "validFrom": at,
        "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList", "statusPurpose": "revocation",
                              "encodedList": encode_status_list(revoked)},
    }
    signed = sign(document, key, at)
    write_public(status_list_file(settings), signed)
    return signed


# -- the credential ---------------------------------------------------------------------------
def build_credential(settings: Settings, *, serial: str, name: str, level_id: str, level_name: str,
                     description: str, issued_at: str, status_index: int, issuer: str) -> dict:
    base = service_url(settings)
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": f"{base}/credentials/{serial}.json",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": level_name,
        "issuer": {"id": issuer, "type": ["Profile"], "name": settings.certification.issuer_name},
        "validFrom": issued_at,
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [{"type": "IdentityObject", "identityType": "name", "hashed": False,
                            "identityHash": name}],
            "achievement": {
                "id": f"{base}/achievements/{level_id}",
                "type": ["Achievement"],
                "name": level_name,
                "description": description or level_name,
                "criteria": {"narrative": description or level_name},
            },
        },
        "credentialStatus": {
            "id": f"{status_list_url(settings)}#{status_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(status_index),
            "statusListCredential": status_list_url(settings),
        },
    }


def serial_of(credential: dict) -> str | None:
    match = re.search(r"/credentials/([^/]+)\.json$", str(credential.get("id", "")))
    return match.group(1) if match and SERIAL.match(match.group(1)) else None


def holder_name(credential: dict) -> str:
    subject = credential.get("credentialSubject") or {}
    for ident in subject.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("identityType") == "name":
            return str(ident.get("identityHash", ""))
    return ""


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str  # Korean, for people
    serial: str | None = None
    revoked: bool = False
    name: str = ""
    level: str = ""
    issued_at: str = ""


def verify_credential(settings: Settings, credential: Any) -> Verification:
    """Check a credential as any verifier would: signature, issuer, and the lab's revocation list."""
    if not isinstance(credential, dict):
        return Verification(False, "수료증 JSON이 아니에요. 받은 .json 파일 그대로 올려 주세요.")
    serial = serial_of(credential)
    found = {"serial": serial, "name": holder_name(credential), "level": str(credential.get("name", "")),
             "issued_at": str(credential.get("validFrom", ""))}
    if "OpenBadgeCredential" not in (credential.get("type") or []):
        return Verification(False, "동행랩 수료증(OpenBadgeCredential) 형식이 아니에요.", **found)
    try:
        signer = check_proof(credential)
    except ProofError as e:
        return Verification(False, str(e), **found)
    ours = issuer_did(settings)
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if ours is None or signer != ours or issuer_id != ours:
        return Verification(False, "동행랩이 발급한 수료증이 아니에요. 다른 키로 서명되어 있어요.", **found)
    if serial is None or not credential_file(settings, serial).exists():
        return Verification(False, "동행랩 발급 기록에 없는 일련번호예요.", **found)
    status = credential.get("credentialStatus") or {}
    try:
        status_list = json.loads(status_list_file(settings).read_text(encoding="utf-8"))
        if check_proof(status_list) != ours:
            raise ProofError("취소 목록의 서명이 동행랩 키가 아니에요.")
        revoked = status_bit(status_list["credentialSubject"]["encodedList"], int(status["statusListIndex"]))
    except (FileNotFoundError, KeyError, ValueError, TypeError) as e:
        return Verification(False, f"취소 목록을 확인하지 못했어요: {e}", **found)
    if revoked:
        return Verification(False, f"취소된 수료증이에요 (일련번호 {serial}). 더 이상 유효하지 않아요.",
                            revoked=True, **found)
    return Verification(True, "동행랩이 발급한 유효한 수료증이에요.", **found)
