"""Consent records decide who can be recognised, for what, until when."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from visage.errors import ConsentError
from visage.governance.consent import ConsentRecord, LegalBasis, normalise_purpose


def test_covers_only_its_purposes() -> None:
    c = ConsentRecord(reference="form-1", purposes=("Access-Control",))
    assert c.purposes == ("access-control",)
    assert c.covers("access-control") and c.covers("ACCESS-CONTROL")
    assert not c.covers("marketing")


def test_expiry_is_inclusive_of_last_day() -> None:
    last = date(2026, 12, 31)
    c = ConsentRecord(reference="f", purposes=("p",), expires_on=last)
    assert c.is_valid(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert not c.is_valid(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))


def test_withdrawn_consent_covers_nothing() -> None:
    now = datetime.now(UTC)
    c = ConsentRecord(reference="f", purposes=("p",), withdrawn_at=now - timedelta(seconds=1))
    assert not c.covers("p", now)


@pytest.mark.parametrize(
    "bad", [{"reference": "  "}, {"purposes": ()}, {"legal_basis": "legitimate-interest"}]
)
def test_incomplete_records_are_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"reference": "f", "purposes": ("p",)} | bad
    with pytest.raises(ValidationError):
        ConsentRecord(**fields)  # type: ignore[arg-type]


def test_purpose_syntax() -> None:
    assert normalise_purpose(" Demo ") == "demo"
    with pytest.raises(ConsentError):
        normalise_purpose("no spaces allowed")


def test_legal_bases_are_art9_grounds() -> None:
    assert LegalBasis("explicit-consent") is LegalBasis.explicit_consent
