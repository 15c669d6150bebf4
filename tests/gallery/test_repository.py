"""Who may be matched for a purpose: the lean consent query agrees with ConsentRecord."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance.consent import ConsentRecord
from visage.usecases.subjects import make_consent


def test_eligible_subjects_follow_every_consent_rule(fresh_app: Visage) -> None:
    now = datetime.now(UTC)
    today = now.date()
    cases = {
        "door": [make_consent("a", ["Door"])],  # purposes are normalised
        "payroll only": [make_consent("b", ["payroll"])],
        "expired yesterday": [make_consent("c", ["door"], expires_on=today - timedelta(days=1))],
        "last day today": [make_consent("d", ["door"], expires_on=today)],
        "withdrawn": [
            ConsentRecord(reference="e", purposes=("door",), withdrawn_at=now - timedelta(1))
        ],
        "withdrawal ahead": [
            ConsentRecord(reference="f", purposes=("door",), withdrawn_at=now + timedelta(1))
        ],
        "withdrawn, then again": [
            ConsentRecord(reference="g", purposes=("door",), withdrawn_at=now - timedelta(2)),
            make_consent("h", ["door", "payroll"]),
        ],
    }
    ids = {}
    with fresh_app.store.session() as session:
        for name, consents in cases.items():
            ids[name] = repo.create_subject(session, fresh_app.keyring, name, consents[0])
            for extra in consents[1:]:
                repo.add_consent(session, fresh_app.keyring, ids[name], extra)

    def names(purpose: str, at: datetime | None = None) -> dict[str, str]:
        with fresh_app.store.session() as session:
            eligible = repo.eligibility(session, purpose, at=at).ids
            return repo.subject_names(session, fresh_app.keyring, set(eligible))

    door = names("DOOR")
    payroll = names("payroll")
    in_a_week = names("door", at=now + timedelta(days=7))
    assert set(door.values()) == {
        "door",
        "last day today",
        "withdrawal ahead",
        "withdrawn, then again",
    }
    assert door[ids["door"]] == "door"
    assert set(payroll.values()) == {"payroll only", "withdrawn, then again"}
    assert set(in_a_week.values()) == {"door", "withdrawn, then again"}
