"""Two-person confirmation of 1:N candidates (EU AI Act Art. 14(5)).

For a purpose marked ``watchlist`` in the deployment profile, a match is a candidate: it is
queued here, and released (an event recorded, webhooks fired) only when two different
reviewer keys have confirmed it. Reviewers decide blind — nobody is shown another reviewer's
decision before the item is closed — the same reviewer cannot decide twice, and one
rejection discards the candidate and its probe face crop at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from visage.errors import NotFoundError, VisageError
from visage.store import crypto
from visage.store.keyring import Keyring
from visage.store.schema import EventRow, ReviewDecisionRow, ReviewRow

CONFIRMATIONS_NEEDED = 2


class Status(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    rejected = "rejected"


class Decision(StrEnum):
    confirm = "confirm"
    reject = "reject"


class ReviewConflictError(VisageError):
    """The decision is not allowed (already decided, same reviewer twice): HTTP 409."""


def _probe_aad(review_id: str) -> bytes:
    return f"review-probe:{review_id}".encode()


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    purpose: str
    score: float
    threshold: float
    quality: float
    source: str
    camera: str | None = None


def open_review(
    session: Session, keys: Keyring, candidate: Candidate, probe_jpeg: bytes | None
) -> ReviewRow:
    """Queue a candidate; its probe crop is sealed with the subject's data key."""
    review_id = uuid.uuid4().hex
    sealed = None
    if probe_jpeg is not None:
        sealed = crypto.seal(keys.get(candidate.subject_id), probe_jpeg, _probe_aad(review_id))
    row = ReviewRow(
        id=review_id,
        subject_id=candidate.subject_id,
        purpose=candidate.purpose,
        created_at=datetime.now(UTC),
        score=candidate.score,
        threshold=candidate.threshold,
        quality=candidate.quality,
        source=candidate.source,
        camera=candidate.camera,
        probe=sealed,
        status=Status.pending.value,
    )
    session.add(row)
    session.flush()
    return row


def get_review(session: Session, review_id: str) -> ReviewRow:
    row = session.get(ReviewRow, review_id, options=[selectinload(ReviewRow.decisions)])
    if row is None:
        raise NotFoundError(f"no review item {review_id}")
    return row


def probe_of(keys: Keyring, row: ReviewRow) -> bytes | None:
    if row.probe is None:
        return None
    return crypto.open_sealed(keys.get(row.subject_id), row.probe, _probe_aad(row.id))


def queue_for(session: Session, reviewer: str) -> list[ReviewRow]:
    """Pending items this reviewer has not decided yet, oldest first."""
    decided = select(ReviewDecisionRow.review_id).where(ReviewDecisionRow.reviewer == reviewer)
    stmt = (
        select(ReviewRow)
        .where(ReviewRow.status == Status.pending.value, ReviewRow.id.not_in(decided))
        .order_by(ReviewRow.created_at)
    )
    return list(session.scalars(stmt))


def all_items(session: Session, status: Status | None = None) -> list[ReviewRow]:
    stmt = select(ReviewRow).options(selectinload(ReviewRow.decisions))
    if status is not None:
        stmt = stmt.where(ReviewRow.status == status.value)
    return list(session.scalars(stmt.order_by(ReviewRow.created_at)))


def decide(session: Session, review_id: str, reviewer: str, decision: Decision) -> ReviewRow:
    """Record one reviewer's decision; closes the item on a rejection or the second
    confirmation (then an event is recorded for the release)."""
    row = get_review(session, review_id)
    if row.status != Status.pending.value:
        raise ReviewConflictError(f"review item {review_id} is already closed ({row.status})")
    if any(d.reviewer == reviewer for d in row.decisions):
        raise ReviewConflictError(
            "this reviewer already decided on this item; a second, different reviewer must"
        )
    now = datetime.now(UTC)
    row.decisions.append(
        ReviewDecisionRow(id=uuid.uuid4().hex, reviewer=reviewer, decision=decision.value, at=now)
    )
    if decision is Decision.reject:
        row.status, row.decided_at, row.probe = Status.rejected.value, now, None
    elif sum(d.decision == Decision.confirm.value for d in row.decisions) >= CONFIRMATIONS_NEEDED:
        row.status, row.decided_at = Status.confirmed.value, now
        session.add(
            EventRow(
                id=uuid.uuid4().hex,
                subject_id=row.subject_id,
                purpose=row.purpose,
                source=row.source,
                camera=row.camera,
                started_at=row.created_at,
                ended_at=row.created_at,
                best_score=row.score,
                frames=1,
                review_id=row.id,
            )
        )
    session.flush()
    return row
