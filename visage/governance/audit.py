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
no longer matches the signed checkpoints. Retention may drop the oldest entries, but only up
to a checkpoint, which then anchors the first remaining entry.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from visage.governance.signing import Signer, verify_signature
from visage.store.schema import AuditCheckpointRow, AuditEntryRow

GENESIS = "0" * 64


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


def _lock_for_append(session: Session) -> None:
    """Take SQLite's write lock before reading the head, so that two writers (threads or
    processes) can never both append after the same entry."""
    session.execute(text("UPDATE audit_entries SET seq = seq WHERE 0"))


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
    return (int(anchor[0]), str(anchor[1])) if anchor is not None else (0, GENESIS)


def append(
    session: Session,
    actor: Actor,
    operation: str,
    *,
    signer: Signer,
    checkpoint_every: int,
    purpose: str | None = None,
    subject_id: str | None = None,
    outcome: str = "ok",
    **details: Any,
) -> AuditEntryRow:
    """Append one entry in the caller's transaction (it commits with the operation)."""
    _lock_for_append(session)
    seq, prev = _head(session)
    row = AuditEntryRow(
        seq=seq + 1,
        at=datetime.now(UTC),
        actor=actor.id,
        role=actor.role,
        operation=operation,
        purpose=purpose,
        subject_id=subject_id,
        outcome=outcome,
        details=json.loads(json.dumps(details, default=str)),
        prev_hash=prev,
        hash="",
    )
    row.hash = entry_hash(row)
    session.add(row)
    session.flush()
    if checkpoint_every > 0 and row.seq % checkpoint_every == 0:
        _sign(session, signer, row.seq, row.hash)
    return row


def _sign(session: Session, signer: Signer, seq: int, head: str) -> AuditCheckpointRow:
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
    return cp


def checkpoint(session: Session, signer: Signer) -> Checkpoint | None:
    """Sign the current head (no-op if it is already signed or the log is empty)."""
    _lock_for_append(session)
    seq, head = _head(session)
    if seq == 0 or session.get(AuditCheckpointRow, seq) is not None:
        return None
    return _checkpoint_out(_sign(session, signer, seq, head))


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


def verify(session: Session, public_key: bytes) -> VerifyReport:
    """Walk the chain and the checkpoints; report the first entry that does not hold."""
    checkpoints = {c.seq: c for c in session.scalars(select(AuditCheckpointRow))}
    count = session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0
    report = VerifyReport(
        ok=True, entries=count, first_seq=None, last_seq=None, checkpoints=len(checkpoints)
    )

    def bad(seq: int, problem: str) -> VerifyReport:
        report.ok, report.first_bad_seq, report.problem = False, seq, problem
        return report

    for cp in sorted(checkpoints.values(), key=lambda c: c.seq):
        if not verify_signature(
            public_key, cp.signature, checkpoint_message(cp.seq, cp.hash, cp.at)
        ):
            return bad(cp.seq, f"checkpoint at entry {cp.seq} has an invalid signature")

    expected_seq: int | None = None
    prev_hash = GENESIS
    last: AuditEntryRow | None = None
    for row in session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq)):
        if expected_seq is None:
            report.first_seq = row.seq
            if row.seq != 1:
                anchor = checkpoints.get(row.seq - 1)
                if anchor is None:
                    return bad(
                        1,
                        f"entries 1 to {row.seq - 1} are missing and no signed "
                        "checkpoint anchors the first remaining entry",
                    )
                prev_hash = anchor.hash
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
        prev_hash, expected_seq, last = row.hash, row.seq + 1, row
    report.last_seq = last.seq if last is not None else None
    newest_cp = max(checkpoints, default=0)
    if newest_cp > (report.last_seq or 0):
        return bad(
            (report.last_seq or 0) + 1,
            f"entries after {report.last_seq or 0} were "
            f"deleted (a signed checkpoint covers entry {newest_cp})",
        )
    return report


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


def purge_before(session: Session, cutoff: datetime) -> int:
    """Drop entries older than ``cutoff``, but only up to the newest signed checkpoint among
    them, which stays to anchor the chain. Returns how many entries were dropped."""
    stmt = (
        select(AuditCheckpointRow.seq)
        .join(AuditEntryRow, AuditEntryRow.seq == AuditCheckpointRow.seq)
        .where(AuditEntryRow.at < cutoff)
        .order_by(AuditCheckpointRow.seq.desc())
        .limit(1)
    )
    upto = session.scalar(stmt)
    if upto is None:
        return 0
    result = session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq <= upto))
    session.execute(delete(AuditCheckpointRow).where(AuditCheckpointRow.seq < upto))
    return int(result.rowcount)  # type: ignore[attr-defined]
