"""The tamper-evident audit log (EU AI Act Art. 12; GDPR Art. 5(2) accountability).

Every use of the system appends one entry: who (key id and role), what (operation, purpose,
subject id, outcome) and the facts needed to reproduce the decision (model, threshold,
gallery digest, a SHA-256 of the input, counts). Never a bystander's data, an embedding, an
image or a subject's name.

Entries are numbered without gaps and hash-chained: each entry's hash covers its own fields,
its number and the previous entry's hash. Every ``checkpoint_every`` entries (and whenever the
server's scheduler runs) the head of the chain is signed with an Ed25519 key kept outside the
database (:mod:`visage.governance.signing`). Editing, deleting, inserting or reordering
entries breaks the chain at the first bad entry; rewriting the whole chain from some point on
no longer matches the signed checkpoints.

Completeness, not only integrity: each signed head is also written outside the database (the
witness file, :mod:`visage.governance.witness`, and the webhooks), and ``verify`` requires the
chain to reach it, so deleting the newest entries, or the whole log, is found. A checkpoint is
due at every multiple of the interval in force (recorded in the meta table), so deleting
checkpoints is found. Retention drops the oldest entries only up to a signed checkpoint and
leaves a signed purge marker; a missing prefix without one is found. Everything is checked
against the signing key pinned at ``init``, not whatever key file is on disk.
"""

from __future__ import annotations

import bisect
import getpass
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from visage.governance import signing
from visage.governance.signing import Signer, verify_signature
from visage.store.db import Store
from visage.store.schema import AuditCheckpointRow, AuditEntryRow, AuditPurgeRow, Meta

GENESIS = "0" * 64
PIN_META = "audit_signing_key_sha256"
"""Meta key: the fingerprint (SHA-256 of the raw public key) of the signing key pinned at init."""
INTERVAL_META = "audit_checkpoint_every"
"""Meta key: JSON ``[[from_seq, every], ...]``, the checkpoint interval in force over time."""
_SIGNED = "visage.audit.signed_heads"
"""``session.info`` key: heads signed in the open transaction, published once it commits."""

log = logging.getLogger("visage.audit")


@dataclass(frozen=True)
class Actor:
    """Who asked: an API key (``key:<id>``) or a local operator (``local:<os user>``)."""

    id: str
    role: str

    @classmethod
    def local(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(f"local:{user}"[:64], "admin")

    @classmethod
    def system(cls) -> Actor:
        """The server's own scheduler (retention, checkpoints)."""
        return cls("system:scheduler", "system")


class AuditEntry(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str
    operation: str
    purpose: str | None
    subject_id: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class Checkpoint(BaseModel):
    seq: int
    at: datetime
    hash: str
    key_id: str
    signature: str


class PurgeMarker(BaseModel):
    """Signed: entries before ``before_seq`` were purged at ``at`` under ``rule``; the first
    remaining entry follows ``anchor_hash``."""

    before_seq: int
    anchor_hash: str
    at: datetime
    rule: str
    key_id: str
    signature: str


OnSigned = Callable[[Checkpoint], None]
"""Called with each newly signed head once its transaction has committed (the witness)."""


def _canonical(row: AuditEntryRow) -> bytes:
    body = {
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "actor": row.actor,
        "role": row.role,
        "operation": row.operation,
        "purpose": row.purpose,
        "subject_id": row.subject_id,
        "outcome": row.outcome,
        "details": row.details,
        "prev": row.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(row: AuditEntryRow) -> str:
    return hashlib.sha256(_canonical(row)).hexdigest()


def checkpoint_message(seq: int, head: str, at: datetime) -> bytes:
    return f"visage-audit-checkpoint:v1:{seq}:{head}:{at.astimezone(UTC).isoformat()}".encode()


def purge_message(before_seq: int, anchor: str, at: datetime, rule: str) -> bytes:
    when = at.astimezone(UTC).isoformat()
    return f"visage-audit-purge:v1:{before_seq}:{anchor}:{when}:{rule}".encode()


@event.listens_for(Session, "after_commit")
def _publish_signed(session: Session) -> None:
    for on_signed, head in session.info.pop(_SIGNED, []):
        try:
            on_signed(head)
        except Exception:  # the operation has committed; a later head will be witnessed
            log.exception("could not witness the audit head at entry %s", head.seq)


@event.listens_for(Session, "after_rollback")
def _drop_signed(session: Session) -> None:
    session.info.pop(_SIGNED, None)


def _lock_for_append(session: Session) -> None:
    """Enter the chain's critical section before reading the head, so that two writers
    (threads, processes or replicas) can never both append after the same entry."""
    Store.serialise(session, "audit")


def _head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(AuditEntryRow.seq, AuditEntryRow.hash).order_by(AuditEntryRow.seq.desc()).limit(1)
    ).first()
    if row is not None:
        return int(row[0]), str(row[1])
    anchor = session.execute(
        select(AuditCheckpointRow.seq, AuditCheckpointRow.hash)
        .order_by(AuditCheckpointRow.seq.desc())
        .limit(1)
    ).first()
    if anchor is not None:
        return int(anchor[0]), str(anchor[1])
    marker = session.execute(
        select(AuditPurgeRow.before_seq, AuditPurgeRow.anchor_hash)
        .order_by(AuditPurgeRow.before_seq.desc())
        .limit(1)
    ).first()
    return (int(marker[0]) - 1, str(marker[1])) if marker is not None else (0, GENESIS)


class Payload(Protocol):
    """What an entry records: one of the models of :mod:`visage.governance.audit_ops`."""

    @property
    def op(self) -> str: ...
    @property
    def purpose_of(self) -> str | None: ...
    @property
    def subject_of(self) -> str | None: ...
    @property
    def outcome_of(self) -> str: ...
    def details(self) -> dict[str, Any]: ...


def append(
    session: Session,
    actor: Actor,
    payload: Payload,
    *,
    signer: Signer,
    checkpoint_every: int,
    on_signed: OnSigned | None = None,
) -> AuditEntryRow:
    """Append one entry in the caller's transaction (it commits with the operation)."""
    _lock_for_append(session)
    seq, prev = _head(session)
    row = AuditEntryRow(
        seq=seq + 1,
        at=datetime.now(UTC),
        actor=actor.id,
        role=actor.role,
        operation=str(payload.op),
        purpose=payload.purpose_of,
        subject_id=payload.subject_of,
        outcome=str(payload.outcome_of),
        details=json.loads(json.dumps(payload.details(), default=str)),
        prev_hash=prev,
        hash="",
    )
    row.hash = entry_hash(row)
    session.add(row)
    session.flush()
    if checkpoint_every > 0:
        _note_interval(session, row.seq, checkpoint_every)
        if row.seq % checkpoint_every == 0:
            _sign(session, signer, row.seq, row.hash, on_signed)
    return row


def _sign(
    session: Session, signer: Signer, seq: int, head: str, on_signed: OnSigned | None
) -> AuditCheckpointRow:
    at = datetime.now(UTC)
    cp = AuditCheckpointRow(
        seq=seq,
        at=at,
        hash=head,
        key_id=signer.key_id,
        signature=signer.sign(checkpoint_message(seq, head, at)),
    )
    session.add(cp)
    session.flush()
    if on_signed is not None:
        session.info.setdefault(_SIGNED, []).append((on_signed, _checkpoint_out(cp)))
    return cp


def checkpoint(
    session: Session, signer: Signer, on_signed: OnSigned | None = None
) -> Checkpoint | None:
    """Sign the current head (no-op if it is already signed or the log is empty)."""
    _lock_for_append(session)
    seq, head = _head(session)
    if seq == 0 or session.get(AuditCheckpointRow, seq) is not None:
        return None
    return _checkpoint_out(_sign(session, signer, seq, head, on_signed))


def _checkpoint_out(cp: AuditCheckpointRow) -> Checkpoint:
    return Checkpoint(
        seq=cp.seq, at=cp.at, hash=cp.hash, key_id=cp.key_id, signature=cp.signature.hex()
    )


def _entry_out(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry.model_validate(row, from_attributes=True)


class VerifyReport(BaseModel):
    ok: bool
    entries: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    first_bad_seq: int | None = None
    problem: str | None = None
    purged_before: int | None = None
    """Entries before this number were dropped under a signed purge marker."""
    witnessed_seq: int | None = None
    """The newest head written outside the database that the chain was checked against."""
    key_fingerprint: str | None = None
    """SHA-256 of the public key everything was checked against."""
    pinned_now: bool = False
    """No key was pinned yet (a data dir from before pinning): the key on disk was pinned now."""


def verify(
    session: Session,
    public_key: bytes,
    *,
    witnessed: Checkpoint | None = None,
    checkpoint_every: int | None = None,
) -> VerifyReport:
    """Walk the chain, the checkpoints and the purge markers; report the first thing that
    does not hold. ``witnessed`` is the newest head kept outside the database: the chain must
    reach it. Checkpoints must sit at every multiple of the interval in force (recorded in the
    meta table; ``checkpoint_every`` where nothing is recorded)."""
    checkpoints = {c.seq: c for c in session.scalars(select(AuditCheckpointRow))}
    markers = list(session.scalars(select(AuditPurgeRow).order_by(AuditPurgeRow.before_seq)))
    count = session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0
    report = VerifyReport(
        ok=True,
        entries=count,
        first_seq=None,
        last_seq=None,
        checkpoints=len(checkpoints),
        witnessed_seq=witnessed.seq if witnessed is not None else None,
        key_fingerprint=signing.fingerprint(public_key),
    )

    def bad(seq: int | None, problem: str) -> VerifyReport:
        report.ok, report.first_bad_seq, report.problem = False, seq, problem
        return report

    problem = _bad_signature(public_key, checkpoints.values(), markers, witnessed)
    if problem is not None:
        return bad(*problem)
    by_before = {m.before_seq: m for m in markers}
    anchors = {m.before_seq - 1: m.anchor_hash for m in markers}
    intervals = _intervals(session, checkpoint_every)
    expected_seq: int | None = None
    prev_hash = GENESIS
    last: AuditEntryRow | None = None
    for row in session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq)):
        if expected_seq is None:
            report.first_seq = row.seq
            if row.seq != 1:
                marker = by_before.get(row.seq)
                if marker is None:
                    return bad(
                        1,
                        f"entries 1 to {row.seq - 1} are missing and no signed purge "
                        "marker accounts for them",
                    )
                prev_hash, report.purged_before = marker.anchor_hash, row.seq
            expected_seq = row.seq
        if row.seq != expected_seq:
            return bad(expected_seq, f"entry {expected_seq} is missing (deleted)")
        if entry_hash(row) != row.hash:
            return bad(row.seq, f"entry {row.seq} was altered (its hash does not match)")
        if row.prev_hash != prev_hash:
            return bad(
                row.seq,
                f"entry {row.seq} does not follow entry {row.seq - 1} "
                "(inserted, reordered or rewritten)",
            )
        signed = checkpoints.get(row.seq)
        if signed is not None and signed.hash != row.hash:
            return bad(
                row.seq,
                f"entry {row.seq} differs from its signed checkpoint (the chain was rewritten)",
            )
        if signed is None and _checkpoint_due(row.seq, intervals):
            return bad(
                row.seq,
                f"the signed checkpoint at entry {row.seq} is missing (deleted); one is due "
                f"every {_interval_at(row.seq, intervals)} entries",
            )
        if anchors.get(row.seq, row.hash) != row.hash:
            return bad(row.seq, f"entry {row.seq} differs from a signed purge marker's anchor")
        if witnessed is not None and witnessed.seq == row.seq and witnessed.hash != row.hash:
            return bad(
                row.seq,
                f"entry {row.seq} differs from the head witnessed outside the database "
                "(the chain was rewritten)",
            )
        prev_hash, expected_seq, last = row.hash, row.seq + 1, row
    report.last_seq = last.seq if last is not None else None
    head = report.last_seq or max((m.before_seq - 1 for m in markers), default=0)
    newest_cp = max(checkpoints, default=0)
    if newest_cp > head:
        return bad(
            head + 1,
            f"entries after {head} were deleted (a signed checkpoint covers entry {newest_cp})",
        )
    if witnessed is not None:
        if witnessed.seq > head:
            return bad(
                head + 1,
                f"entries after {head} were deleted (head {witnessed.seq} was witnessed "
                f"outside the database at {witnessed.at.isoformat(timespec='seconds')})",
            )
        if anchors.get(witnessed.seq, witnessed.hash) != witnessed.hash:
            return bad(witnessed.seq, "the witnessed head differs from a purge marker's anchor")
    return report


def _bad_signature(
    public_key: bytes,
    checkpoints: Iterable[AuditCheckpointRow],
    markers: Iterable[AuditPurgeRow],
    witnessed: Checkpoint | None,
) -> tuple[int | None, str] | None:
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if not verify_signature(
            public_key, cp.signature, checkpoint_message(cp.seq, cp.hash, cp.at)
        ):
            return cp.seq, f"checkpoint at entry {cp.seq} has an invalid signature"
    for m in markers:
        message = purge_message(m.before_seq, m.anchor_hash, m.at, m.rule)
        if not verify_signature(public_key, m.signature, message):
            return (
                m.before_seq,
                f"the purge marker for entries before {m.before_seq} has an invalid signature "
                "(forged)",
            )
    if witnessed is not None:
        message = checkpoint_message(witnessed.seq, witnessed.hash, witnessed.at)
        try:
            signature = bytes.fromhex(witnessed.signature)
        except ValueError:
            signature = b""
        if not verify_signature(public_key, signature, message):
            return witnessed.seq, "the witnessed head is not signed by the pinned key"
    return None


# -- the checkpoint interval in force, by entry number ---------------------------------------


def _intervals(session: Session, default: int | None) -> list[tuple[int, int]]:
    """``[(from_seq, every), ...]``: ``every`` applies from entry ``from_seq`` on."""
    meta = session.get(Meta, INTERVAL_META)
    if meta is None:
        return [(1, default)] if default else []
    return [(int(a), int(b)) for a, b in json.loads(meta.value)]


def _interval_at(seq: int, intervals: list[tuple[int, int]]) -> int:
    i = bisect.bisect_right(intervals, seq, key=lambda seg: seg[0]) - 1
    return intervals[i][1] if i >= 0 else 0


def _checkpoint_due(seq: int, intervals: list[tuple[int, int]]) -> bool:
    every = _interval_at(seq, intervals)
    return every > 0 and seq % every == 0


def _note_interval(session: Session, seq: int, every: int) -> None:
    """Record the interval an appender uses when it differs from the last one recorded, so
    that ``verify`` knows where checkpoints are due even if the setting changes."""
    meta = session.get(Meta, INTERVAL_META)
    segments = json.loads(meta.value) if meta is not None else []
    if segments and segments[-1][1] == every:
        return
    segments.append([seq if segments else 1, every])
    value = json.dumps(segments).encode()
    if meta is None:
        session.add(Meta(key=INTERVAL_META, value=value))
    else:
        meta.value = value


# -- the pinned signing key -------------------------------------------------------------------


def pinned_fingerprint(session: Session) -> str | None:
    """The fingerprint of the signing key pinned at ``init`` (None before pinning)."""
    meta = session.get(Meta, PIN_META)
    return meta.value.decode() if meta is not None else None


def pin_key(session: Session, fingerprint: str) -> None:
    """Pin the signing key's fingerprint, once: an existing pin is never replaced."""
    if session.get(Meta, PIN_META) is None:
        session.add(Meta(key=PIN_META, value=fingerprint.encode()))
        session.flush()


def entries(
    session: Session,
    *,
    since: datetime | None = None,
    after_seq: int = 0,
    operation: str | None = None,
    limit: int | None = None,
) -> Iterator[AuditEntry]:
    stmt = select(AuditEntryRow).where(AuditEntryRow.seq > after_seq).order_by(AuditEntryRow.seq)
    if since is not None:
        stmt = stmt.where(AuditEntryRow.at >= since)
    if operation is not None:
        stmt = stmt.where(AuditEntryRow.operation == operation)
    if limit is not None:
        stmt = stmt.limit(limit)
    for row in session.scalars(stmt):
        yield _entry_out(row)


def checkpoints(session: Session) -> list[Checkpoint]:
    stmt = select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq)
    return [_checkpoint_out(c) for c in session.scalars(stmt)]


def newest_checkpoint(session: Session) -> Checkpoint | None:
    stmt = select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq.desc()).limit(1)
    cp = session.scalar(stmt)
    return _checkpoint_out(cp) if cp is not None else None


def purge_markers(session: Session) -> list[PurgeMarker]:
    stmt = select(AuditPurgeRow).order_by(AuditPurgeRow.before_seq)
    return [
        PurgeMarker(
            before_seq=m.before_seq,
            anchor_hash=m.anchor_hash,
            at=m.at,
            rule=m.rule,
            key_id=m.key_id,
            signature=m.signature.hex(),
        )
        for m in session.scalars(stmt)
    ]


def purge_before(session: Session, cutoff: datetime, *, signer: Signer, rule: str) -> int:
    """Drop entries older than ``cutoff``, but only up to the newest signed checkpoint among
    them (kept, with a signed purge marker, to anchor the chain), and only if that part of the
    chain verifies: retention must not launder a tampered prefix. Returns how many entries
    were dropped."""
    stmt = (
        select(AuditCheckpointRow)
        .join(AuditEntryRow, AuditEntryRow.seq == AuditCheckpointRow.seq)
        .where(AuditEntryRow.at < cutoff)
        .order_by(AuditCheckpointRow.seq.desc())
        .limit(1)
    )
    anchor = session.scalar(stmt)
    if anchor is None:
        return 0
    if not _prefix_holds(session, anchor, signer.public_raw):
        log.warning("audit entries up to %s do not verify: not purged", anchor.seq)
        return 0
    result = session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq <= anchor.seq))
    session.execute(delete(AuditCheckpointRow).where(AuditCheckpointRow.seq < anchor.seq))
    at = datetime.now(UTC)
    before = anchor.seq + 1
    session.add(
        AuditPurgeRow(
            before_seq=before,
            anchor_hash=anchor.hash,
            at=at,
            rule=rule[:200],
            key_id=signer.key_id,
            signature=signer.sign(purge_message(before, anchor.hash, at, rule[:200])),
        )
    )
    session.flush()
    return int(result.rowcount)  # type: ignore[attr-defined]


def _prefix_holds(session: Session, anchor: AuditCheckpointRow, public_key: bytes) -> bool:
    """Entries up to the checkpoint ``anchor`` chain from the last purge (or genesis) to it."""
    if not verify_signature(
        public_key, anchor.signature, checkpoint_message(anchor.seq, anchor.hash, anchor.at)
    ):
        return False
    marker = session.scalar(
        select(AuditPurgeRow).order_by(AuditPurgeRow.before_seq.desc()).limit(1)
    )
    expected, prev = (marker.before_seq, marker.anchor_hash) if marker else (1, GENESIS)
    stmt = select(AuditEntryRow).where(AuditEntryRow.seq <= anchor.seq).order_by(AuditEntryRow.seq)
    for row in session.scalars(stmt):
        if row.seq != expected or row.prev_hash != prev or entry_hash(row) != row.hash:
            return False
        expected, prev = row.seq + 1, row.hash
    return prev == anchor.hash
