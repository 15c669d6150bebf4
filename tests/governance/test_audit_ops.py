"""Typed audit entries: the stored form is the one the untyped call wrote, and a report that
cannot read a figure says so instead of publishing 0."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from tests.conftest import make_app
from visage.core import Visage
from visage.governance import audit
from visage.governance.access import Role
from visage.governance.audit_ops import (
    AuditOp,
    AuditOutcome,
    AuditPayload,
    AuditRecordError,
    EraseAudit,
    IdentifyAudit,
    KeyCreateAudit,
    RetentionPurgeAudit,
    ReviewConfirmAudit,
    WatchAudit,
    read,
    refused,
)
from visage.governance.reports import transparency_figures
from visage.governance.review import Status
from visage.store.keyring import REFERENCE_AUDIT
from visage.store.schema import AuditEntryRow
from visage.usecases import keys as keys_uc
from visage.usecases import report as report_uc
from visage.usecases.subjects import add_subject, make_consent, rename_subject, withdraw_consent

ACTOR = audit.Actor("test:typed", "admin")
SHA = "ab" * 32


@pytest.fixture()
def app(tmp_path: Path) -> Iterator[Visage]:
    core = make_app(tmp_path / "home")
    yield core
    core.close()


def _stored(app: Visage, seq: int) -> tuple[str, str | None, str | None, str, str]:
    """The entry's columns as the store holds them (details as raw JSON text: SQLite's TEXT,
    PostgreSQL's ``json``, which keeps its input text as it was)."""
    with app.store.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT operation, purpose, subject_id, outcome, CAST(details AS TEXT) "
                "FROM audit_entries WHERE seq = :seq"
            ),
            {"seq": seq},
        ).one()
    return tuple(row)  # type: ignore[return-value]


def _legacy(
    op: str,
    purpose: str | None = None,
    subject_id: str | None = None,
    outcome: str = "ok",
    **details: Any,
) -> tuple[str, str | None, str | None, str, str]:
    """What ``audit.append(session, actor, op, **fields)`` stored before it was typed: the
    same JSON conversion, then SQLAlchemy's JSON column serialiser (``json.dumps``)."""
    return (
        op,
        purpose,
        subject_id,
        outcome,
        json.dumps(json.loads(json.dumps(details, default=str))),
    )


def _write(app: Visage, payload: AuditPayload) -> int:
    with app.store.session() as session:
        return app.audit(session, ACTOR, payload).seq


CASES: list[tuple[AuditPayload, tuple[str, str | None, str | None, str, str]]] = [
    (
        IdentifyAudit(
            purpose="door",
            input_sha256=SHA,
            model="m1",
            threshold=0.925,
            gallery="g1",
            faces=3,
            matches=1,
            bystanders=2,
            matched_subjects=["s1"],
            reviews=[],
        ),
        _legacy(
            "identify",
            purpose="door",
            input_sha256=SHA,
            model="m1",
            threshold=0.925,
            gallery="g1",
            faces=3,
            matches=1,
            bystanders=2,
            matched_subjects=["s1"],
            reviews=[],
        ),
    ),
    (
        refused(AuditOp.identify, purpose="door", reason="no DPIA", authorisation_ref="W-1"),
        _legacy(
            "identify",
            purpose="door",
            outcome="refused",
            reason="no DPIA",
            authorisation_ref="W-1",
        ),
    ),
    (
        refused(AuditOp.watch, purpose="door", reason="live is off"),
        _legacy("watch", purpose="door", outcome="refused", reason="live is off"),
    ),
    (
        WatchAudit(
            purpose="door",
            outcome=AuditOutcome.failed,
            reason="the stream failed",
            camera=None,
            frames=10,
            tracks=2,
            events=1,
            bystander_tracks=1,
            reconnects=0,
            dropped_frames=0,
            model="m1",
            threshold=0.925,
            gallery="g1",
        ),
        _legacy(
            "watch",
            purpose="door",
            outcome="failed",
            reason="the stream failed",
            camera=None,
            frames=10,
            tracks=2,
            events=1,
            bystander_tracks=1,
            reconnects=0,
            dropped_frames=0,
            model="m1",
            threshold=0.925,
            gallery="g1",
        ),
    ),
    (
        KeyCreateAudit(key_id="k1", key_role=Role.admin),
        _legacy("key.create", key_id="k1", key_role="admin"),
    ),
    (
        ReviewConfirmAudit(purpose="door", subject_id="s1", review_id="r1", status=Status.pending),
        _legacy(
            "review.confirm", purpose="door", subject_id="s1", review_id="r1", status="pending"
        ),
    ),
    (
        EraseAudit(
            subject_id="s1",
            outcome=AuditOutcome.resumed,
            gallery="g1",
            templates=2,
            consents=1,
            events=0,
            reviews=0,
        ),
        _legacy(
            "erase",
            subject_id="s1",
            outcome="resumed",
            gallery="g1",
            templates=2,
            consents=1,
            events=0,
            reviews=0,
        ),
    ),
]


def test_stored_entries_are_byte_identical_to_the_untyped_call(app: Visage) -> None:
    for payload, legacy in CASES:
        assert _stored(app, _write(app, payload)) == legacy, type(payload).__name__


def test_use_cases_store_what_they_stored_before(app: Visage) -> None:
    """Real use-cases (no model needed): consent with a date and an enum, withdrawal,
    rename, an API key with and without purposes and owner."""
    consent = make_consent("F-7", ["door"], expires_on=date(2030, 1, 31))
    sid = add_subject(app, "Ada Lovelace", consent).id
    blind = app.keyring.blind(REFERENCE_AUDIT, "F-7")
    with app.store.session() as session:
        first = max(e.seq for e in audit.entries(session))
    assert _stored(app, first) == _legacy(
        "subject.create",
        subject_id=sid,
        consent_reference_hash=blind,
        purposes=["door"],
        legal_basis="explicit-consent",
        expires_on=date(2030, 1, 31),
    )
    rename_subject(app, sid, "Ada King")
    withdraw_consent(app, sid, "F-7")
    created = keys_uc.create_key(app, Role.operator, ["door"], "cam", owner="ops")
    assert [_stored(app, first + i) for i in (1, 2, 3)] == [
        _legacy("subject.rename", subject_id=sid),
        _legacy(
            "consent.withdraw", subject_id=sid, consent_reference_hash=blind, templates_deleted=0
        ),
        _legacy(
            "key.create",
            key_id=created.id,
            key_role="operator",
            purposes=["door"],
            owner="ops",
        ),
    ]


def test_every_operation_has_a_payload_model() -> None:
    assert set(AuditOp) <= set(AuditPayload.registry)


def test_entries_read_back_into_their_model(app: Visage) -> None:
    for payload, _ in CASES:
        _write(app, payload)
    with app.store.session() as session:
        entries = list(audit.entries(session))
    by_op = {(e.operation, e.outcome): e for e in entries}
    review = read(by_op["review.confirm", "ok"], ReviewConfirmAudit)
    assert review.status is Status.pending
    assert read(by_op["erase", "resumed"], EraseAudit).outcome is AuditOutcome.resumed
    with pytest.raises(AuditRecordError, match="not 'watch'"):
        read(by_op["erase", "resumed"], WatchAudit)


def _identify(app: Visage, bystanders: int) -> None:
    _write(
        app,
        IdentifyAudit(
            purpose="door",
            input_sha256=SHA,
            model="m1",
            threshold=0.925,
            gallery="g1",
            faces=bystanders + 1,
            matches=1,
            bystanders=bystanders,
            matched_subjects=["s1"],
            reviews=[],
        ),
    )


def test_report_figures_come_from_typed_fields(app: Visage) -> None:
    _identify(app, 2)
    _identify(app, 3)
    _write(app, refused(AuditOp.identify, purpose="door", reason="no"))
    _write(
        app,
        RetentionPurgeAudit(
            events_deleted=4,
            reviews_deleted=1,
            audit_entries_dropped=0,
            templates_deleted=2,
            subjects_without_consent=[],
            orphan_keys_destroyed=0,
        ),
    )
    with app.store.session() as session:
        figures = transparency_figures(audit.entries(session))
    door = next(p for p in figures.purposes if p.purpose == "door")
    assert (door.searches, door.refused, door.faces, door.bystander_faces) == (2, 1, 7, 5)
    assert figures.purged["templates_deleted"] == 2 and figures.purged["events_deleted"] == 4


def test_a_missing_figure_fails_the_report_instead_of_reading_0(app: Visage) -> None:
    """An identify entry without ``bystanders`` (a renamed field, a hand-edited row): the
    report names the entry and the field, it never publishes "0 bystander faces"."""
    _identify(app, 2)
    with app.store.session() as session:
        entry = next(e for e in audit.entries(session) if e.operation == "identify")
    renamed = {k: v for k, v in entry.details.items() if k != "bystanders"}
    renamed["bystander_faces"] = 2
    with pytest.raises(AuditRecordError, match=rf"entry {entry.seq} .*bystanders"):
        transparency_figures([entry.model_copy(update={"details": renamed})])

    # The same through the use-case, on the data dir itself.
    with app.store.session() as session:
        session.execute(
            update(AuditEntryRow).where(AuditEntryRow.seq == entry.seq).values(details=renamed)
        )
    with pytest.raises(AuditRecordError, match="bystanders"):
        report_uc.transparency(app)
