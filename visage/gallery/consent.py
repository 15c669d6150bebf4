"""Consent records: a subject can be recognised only for purposes they agreed to, until
their consent expires or is withdrawn. No consent record, no enrolment.

This lives in the gallery, below ``governance``: who may be matched is a property of the
gallery's subjects, and ``governance`` (audit, review, erasure) sits above the gallery it
governs. ``visage.governance.consent`` re-exports it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from visage.errors import ConsentError

_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class LegalBasis(StrEnum):
    """GDPR Art. 9(2) grounds for processing biometric data (and law 09-08 equivalents)."""

    explicit_consent = "explicit-consent"
    employment = "employment"
    vital_interests = "vital-interests"
    public_interest = "substantial-public-interest"
    research = "research"


def normalise_purpose(purpose: str) -> str:
    """Purposes are case-insensitive slugs such as ``access-control`` or ``demo``."""
    p = purpose.strip().lower()
    if not _PURPOSE.match(p):
        raise ConsentError(
            f"invalid purpose {purpose!r}: use 1-64 letters, digits, '-', '_' or '.'"
        )
    return p


def consent_in_force(
    withdrawn_at: datetime | None, expires_on: date | None, at: datetime | None = None
) -> bool:
    """Whether a consent with these dates is in force at ``at`` (now by default): not yet
    withdrawn, and ``expires_on`` (its last day) not passed."""
    now = at or datetime.now(UTC)
    if withdrawn_at is not None and withdrawn_at <= now:
        return False
    return expires_on is None or now.date() <= expires_on


class ConsentRecord(BaseModel):
    """What a subject agreed to. ``reference`` points at the signed form or other proof."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str = Field(min_length=1, max_length=200, description="Proof of consent.")
    purposes: tuple[str, ...] = Field(min_length=1, description="Purposes consented to.")
    legal_basis: LegalBasis = Field(default=LegalBasis.explicit_consent)
    granted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    expires_on: date | None = Field(default=None, description="Last day of validity.")
    withdrawn_at: datetime | None = None

    @field_validator("reference")
    @classmethod
    def _reference_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("consent reference must not be blank")
        return value.strip()

    @field_validator("purposes")
    @classmethod
    def _normalise(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalise_purpose(p) for p in value))

    def is_valid(self, at: datetime | None = None) -> bool:
        return consent_in_force(self.withdrawn_at, self.expires_on, at)

    def covers(self, purpose: str, at: datetime | None = None) -> bool:
        return self.is_valid(at) and normalise_purpose(purpose) in self.purposes
