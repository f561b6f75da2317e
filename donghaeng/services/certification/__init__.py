"""Certification: the policy, eligibility from nbgrader's gradebooks, the TTT gate, certificates and credentials.

See docs/certification.md.  The trainer dashboard and the ``donghaeng cert`` command use these names;
they are imported on first use, so the hub and the public verification service (which need only
``hub`` and ``credential``) do not load nbgrader, fpdf2 and matplotlib.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Certificate": "store", "Store": "store", "TeachBackRecord": "store",
    "CertificationError": "policy", "Level": "policy", "Policy": "policy", "load_policy": "policy",
    "CalibrationStanding": "eligibility", "Eligibility": "eligibility", "LearnerStatus": "eligibility",
    "Score": "eligibility", "evaluate": "eligibility",
    "issue": "issuing", "revoke": "issuing",
    "Verification": "credential", "verify_credential": "credential",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
