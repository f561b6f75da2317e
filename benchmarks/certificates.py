"""What a class's certificates cost to make and check, against plain baselines measured in the same run.

    /opt/donghaeng/venv/bin/python benchmarks/certificates.py [--count 30]

1. **PDF**: ``certification.pdf.render`` (Nanum embedded and subset, QR code) per certificate, against a
   one-line fpdf2 PDF with a core font (what fpdf2 itself costs);
2. **sign / verify**: ``eddsa-jcs-2022`` signing and the full ``check_proof`` against a bare Ed25519
   signature of the same JSON serialised with ``json.dumps`` (what JCS, hashing and did:key add).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fpdf import FPDF

from donghaeng.services.certification import credential as vc
from donghaeng.services.certification.pdf import render
from donghaeng.common.settings import Course, Lab, Settings


def per_item(run: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        run(i)
    return (time.perf_counter() - start) / count


def plain_pdf(i: int) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=20)
    pdf.cell(100, 10, f"Certificate {i}")
    return bytes(pdf.output())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=30)
    count = parser.parse_args().count
    settings = Settings(lab=Lab(data_dir=Path("/nonexistent")), courses=[Course(id="ai-basics", title="AI")])
    key = Ed25519PrivateKey.generate()
    at = "2026-11-25T10:00:00Z"

    def certificate(i: int) -> bytes:
        return render(name=f"김하늘 {i}", level="AI 기초 수료", description="다섯 과제를 모두 마쳤어요.", issued_at=at,
                      issuer="동행랩", serial="DH-2026-ABCDEFGH",
                      verify_url="https://lab.example.kr/services/certificates/verify/DH-2026-ABCDEFGH")

    def document(i: int) -> dict:
        return vc.build_credential(settings, serial="DH-2026-ABCDEFGH", name=f"김하늘 {i}", level_id="ai-basics",
                                   level_name="AI 기초 수료", description="", issued_at=at, status_index=i,
                                   issuer=vc.did_for(key.public_key()))

    docs = [document(i) for i in range(count)]
    signed = [vc.sign(d, key, at) for d in docs]
    certificate(0)  # font parsing and caches, outside the timing
    timings = {
        "pdf: plain fpdf2 page": per_item(plain_pdf, count),
        "pdf: certificate (Nanum + QR)": per_item(certificate, count),
        "sign: bare Ed25519 of json.dumps": per_item(lambda i: key.sign(json.dumps(docs[i]).encode()), count),
        "sign: eddsa-jcs-2022": per_item(lambda i: vc.sign(docs[i], key, at), count),
        "verify: bare Ed25519": per_item(
            lambda i: key.public_key().verify(key.sign(json.dumps(docs[i]).encode()), json.dumps(docs[i]).encode()),
            count),
        "verify: check_proof (JCS + did:key)": per_item(lambda i: vc.check_proof(signed[i]), count),
    }
    for name, seconds in timings.items():
        print(f"{name:40s} {seconds * 1000:8.2f} ms each")
    pairs = [("pdf", "pdf: certificate (Nanum + QR)", "pdf: plain fpdf2 page"),
             ("sign", "sign: eddsa-jcs-2022", "sign: bare Ed25519 of json.dumps"),
             ("verify", "verify: check_proof (JCS + did:key)", "verify: bare Ed25519")]
    for label, ours, base in pairs:
        print(f"ratio {label}: {timings[ours] / timings[base]:.1f}x the baseline")
    each = timings[pairs[0][1]] + timings[pairs[1][1]]
    print(f"a class of {count}: certificates (PDF + signature) in {count * each:.1f} s")


if __name__ == "__main__":
    main()
