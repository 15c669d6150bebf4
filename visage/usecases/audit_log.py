"""Read, verify, export and sign the audit chain; witness its head; pin its signing key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.errors import InputError
from visage.governance import audit, signing, witness
from visage.governance.audit import AuditEntry, Checkpoint, VerifyReport
from visage.governance.witness import Witness, WitnessError
from visage.store.schema import AuditCheckpointRow, AuditEntryRow


def witness_path(core: Visage) -> Path:
    """``audit_witness``, else ``witness/audit-head.json`` in the data dir."""
    return core.witness_path


def witness_head(core: Visage, head: Checkpoint) -> None:
    """Write a newly signed head to the witness file and send it to the webhooks."""
    core.witness_head(head)


def signing_key_path(core: Visage) -> Path:
    return core.settings.signing_key_file or core.home / signing.SIGNING_KEY_FILE


def pin_signing_key(core: Visage, session: Session) -> str:
    """At ``init``: pin the signing key's fingerprint in the meta table and in the witness
    file; refuse a key file that is not the one pinned before."""
    signer = core.signer
    pinned = audit.pinned_fingerprint(session)
    if pinned is not None and pinned != signer.fingerprint:
        raise WitnessError(
            f"signing key {signing_key_path(core)} (key id {signer.key_id}) is not the key "
            f"pinned at init ({pinned[:16]}); restore the right key file"
        )
    audit.pin_key(session, signer.fingerprint)
    witness.ensure(witness_path(core), signer.public_raw)
    return signer.fingerprint


def verify(core: Visage, public_key: bytes | None = None) -> VerifyReport:
    """Check the chain against a pinned key (``public_key`` if given, else the fingerprint
    recorded at ``init``) and the head witnessed outside the database. A signing key file
    that is not the pinned key fails: the key on disk is never trusted by itself."""
    path = witness_path(core)
    try:
        seen = witness.read(path)  # before the database: the witness may only lag behind it
        problem = None
    except WitnessError as exc:
        seen, problem = None, exc.message
    disk = signing.load_existing(signing_key_path(core))
    with core.store.session() as session:
        if problem is not None:
            return _refused(session, problem)
        pinned = audit.pinned_fingerprint(session)
        pinned_now = pinned is None
        if pinned is None:  # a data dir from before pinning: pin on first use
            first = public_key or (seen.public_raw() if seen else None)
            first = first or (disk.public_raw if disk else None)
            if first is None:
                return _refused(
                    session, "no signing key to pin: name the public key to check against"
                )
            pinned = signing.fingerprint(first)
            audit.pin_key(session, pinned)
            seen = seen or witness.ensure(path, first)
        trusted = signing.fingerprint(public_key) if public_key else pinned
        problem = _key_problem(core, trusted, pinned, seen, disk)
        key = _trusted_key(trusted, public_key, seen, disk)
        if problem is not None or key is None:
            return _refused(
                session,
                problem
                or "no public key with the pinned fingerprint is at hand: name the public key to "
                "check against",
            )
        report = audit.verify(
            session,
            key,
            witnessed=seen.head if seen else None,
            checkpoint_every=core.settings.audit_checkpoint_every,
        )
        report.pinned_now = pinned_now
        return report


def _key_problem(
    core: Visage,
    trusted: str,
    pinned: str,
    seen: Witness | None,
    disk: signing.Signer | None,
) -> str | None:
    short = trusted[:16]
    if pinned != trusted:
        return f"the key pinned at init ({pinned[:16]}) is not the key given ({short})"
    if seen is None:
        return f"the audit witness {witness_path(core)} is missing (deleted?)"
    if seen.key_fingerprint != trusted:
        return f"the audit witness pins another key ({seen.key_fingerprint[:16]}, not {short})"
    if disk is not None and disk.fingerprint != trusted:
        return (
            f"signing key {signing_key_path(core)} (key id {disk.key_id}) is not the pinned "
            f"key ({short}): it was replaced"
        )
    return None


def _trusted_key(
    trusted: str,
    given: bytes | None,
    seen: Witness | None,
    disk: signing.Signer | None,
) -> bytes | None:
    candidates = [given, seen.public_raw() if seen else None, disk.public_raw if disk else None]
    for raw in candidates:
        if raw is not None and signing.fingerprint(raw) == trusted:
            return raw
    return None


def _refused(session: Session, problem: str) -> VerifyReport:
    count = session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0
    cps = session.scalar(select(func.count()).select_from(AuditCheckpointRow)) or 0
    return VerifyReport(
        ok=False, entries=count, first_seq=None, last_seq=None, checkpoints=cps, problem=problem
    )


def entries(
    core: Visage,
    *,
    since: datetime | None = None,
    after_seq: int = 0,
    operation: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    with core.store.session() as session:
        return list(
            audit.entries(
                session, since=since, after_seq=after_seq, operation=operation, limit=limit
            )
        )


def export_lines(core: Visage, since: datetime | None = None) -> Iterator[str]:
    """JSON Lines: every entry, then every checkpoint (``"checkpoint": true``) and purge
    marker (``"purge": true``), so that an auditor can re-check the chain and the signatures
    outside Visage."""
    with core.store.session() as session:
        for entry in audit.entries(session, since=since):
            yield entry.model_dump_json()
        for cp in audit.checkpoints(session):
            yield '{"checkpoint": true, ' + cp.model_dump_json()[1:]
        for marker in audit.purge_markers(session):
            yield '{"purge": true, ' + marker.model_dump_json()[1:]


def checkpoint(core: Visage) -> Checkpoint | None:
    """Sign the head now (the scheduler does this on every run). If it is already signed,
    make sure the witness has it (a witness write that failed earlier is made good)."""
    with core.store.session() as session:
        cp = audit.checkpoint(session, core.signer, partial(witness_head, core))
        newest = None if cp is not None else audit.newest_checkpoint(session)
    if newest is not None:
        witness_head(core, newest)
    return cp


def public_key_pem(core: Visage) -> str:
    return core.signer.public_pem


# -- browsing (the console's Audit screen) -------------------------------------------


class AuditQuery(BaseModel):
    """Which entries to show: every filter is optional; ``until`` is inclusive (the whole
    day, UTC). ``actor`` matches an actor id (``user:ada``) or the name after its prefix
    (``ada``)."""

    operation: str | None = Field(default=None, max_length=32)
    actor: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=64)
    since: date | None = None
    until: date | None = None
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=50, ge=1, le=500)


class AuditPage(BaseModel):
    """One page of matching entries, newest first."""

    entries: list[AuditEntry]
    total: int
    page: int
    pages: int


class ChainState(BaseModel):
    """What the chain looks like without walking it (see :func:`verify` for the check)."""

    entries: int
    first_seq: int | None
    last_seq: int | None
    newest_checkpoint: Checkpoint | None
    key_id: str
    key_fingerprint: str


def search(core: Visage, query: AuditQuery) -> AuditPage:
    """Entries matching ``query``, newest first, one page at a time."""
    if query.since and query.until and query.until < query.since:
        raise InputError("the end date is before the start date")
    conditions: list[ColumnElement[bool]] = []
    if query.operation:
        conditions.append(AuditEntryRow.operation == query.operation)
    if query.actor:
        conditions.append(
            or_(
                AuditEntryRow.actor == query.actor,
                AuditEntryRow.actor.endswith(":" + query.actor, autoescape=True),
            )
        )
    if query.purpose:
        conditions.append(AuditEntryRow.purpose == query.purpose)
    if query.since:
        conditions.append(AuditEntryRow.at >= datetime.combine(query.since, time(), UTC))
    if query.until:
        end = datetime.combine(query.until + timedelta(days=1), time(), UTC)
        conditions.append(AuditEntryRow.at < end)
    with core.store.session() as session:
        total = (
            session.scalar(select(func.count()).select_from(AuditEntryRow).where(*conditions)) or 0
        )
        pages = max(1, -(-total // query.per_page))
        page = min(query.page, pages)
        stmt = (
            select(AuditEntryRow)
            .where(*conditions)
            .order_by(AuditEntryRow.seq.desc())
            .offset((page - 1) * query.per_page)
            .limit(query.per_page)
        )
        rows = [AuditEntry.model_validate(r, from_attributes=True) for r in session.scalars(stmt)]
    return AuditPage(entries=rows, total=total, page=page, pages=pages)


def chain_state(core: Visage) -> ChainState:
    with core.store.session() as session:
        count, first, last = session.execute(
            select(func.count(), func.min(AuditEntryRow.seq), func.max(AuditEntryRow.seq))
        ).one()
        newest = audit.newest_checkpoint(session)
    return ChainState(
        entries=count or 0,
        first_seq=first,
        last_seq=last,
        newest_checkpoint=newest,
        key_id=core.signer.key_id,
        key_fingerprint=core.signer.fingerprint,
    )
