"""Two-person confirmation of 1:N candidates (EU AI Act Art. 14(5)).

For a purpose marked ``watchlist`` in the deployment profile, a match is a candidate: it is
queued here, and released (an event recorded, webhooks fired, the outcome readable by whoever
asked) only when reviewer keys of two different owners have confirmed it. The one who asked
(``requester_owner``) learns nothing but the review id until then, and may not review their
own request. Reviewers decide blind — nobody is shown another reviewer's decision before the
item is closed — the same person cannot decide twice, and one rejection discards the
candidate and its probe face crop at once.

Decisions are serialised: :func:`decide` enters a critical section (:meth:`Store.serialise`)
before it reads the item, so two confirmations arriving at the same instant are counted one
after the other — never both against the same earlier state (an item stuck with two
confirmations, or released twice).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from visage.errors import NotFoundError, VisageError
from visage.governance.access import (
    ForbiddenError,
    ReviewerWithoutOwnerError,
    owner_of,
    same_person,
)
from visage.store import crypto
from visage.store.db import Store
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
    inconclusive = "inconclusive"
    """The reviewer cannot tell: recorded (they may not decide again), never counted as a
    confirmation, the item stays pending for other reviewers."""


class BlindAnswer(StrEnum):
    """A reviewer's answer to "same person?", given before the name and score are shown."""

    same = "same"
    different = "different"
    cannot_tell = "cannot-tell"


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
    requested_by: str | None = None
    requester_owner: str | None = None


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
        requested_by=candidate.requested_by,
        requester_owner=candidate.requester_owner,
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


def _lock_for_decision(session: Session) -> None:
    """Enter the decisions' critical section before reading the item (as the audit chain
    does), so that concurrent decisions on one item, on any replica, are applied one after
    the other."""
    Store.serialise(session, "review")


def ensure_may_review(row: ReviewRow, reviewer_owner: str) -> None:
    """A reviewer key must name its owner, and that owner must not be the one who asked."""
    if not reviewer_owner:
        raise ReviewerWithoutOwnerError(
            "this reviewer key names no owner; a reviewer key that names its owner is needed"
        )
    if same_person(row.requester_owner, reviewer_owner):
        raise ForbiddenError("you asked for this search; someone else must review it")


def queue_for(session: Session, reviewer: str, owner: str) -> list[ReviewRow]:
    """Pending items this reviewer's owner may still decide, oldest first: none they asked
    for, none they already decided (with this key or another of theirs)."""
    stmt = (
        select(ReviewRow)
        .options(selectinload(ReviewRow.decisions))
        .where(ReviewRow.status == Status.pending.value)
        .order_by(ReviewRow.created_at)
    )
    items = []
    for row in session.scalars(stmt):
        if same_person(row.requester_owner, owner):
            continue
        deciders = {d.reviewer for d in row.decisions}
        if reviewer in deciders or any(same_person(owner_of(session, d), owner) for d in deciders):
            continue
        items.append(row)
    return items


def all_items(session: Session, status: Status | None = None) -> list[ReviewRow]:
    stmt = select(ReviewRow).options(selectinload(ReviewRow.decisions))
    if status is not None:
        stmt = stmt.where(ReviewRow.status == status.value)
    return list(session.scalars(stmt.order_by(ReviewRow.created_at)))


def decide(
    session: Session, review_id: str, reviewer: str, reviewer_owner: str, decision: Decision
) -> ReviewRow:
    """Record one reviewer's decision; closes the item on a rejection or the second
    confirmation by a different owner (then an event is recorded for the release)."""
    _lock_for_decision(session)
    row = get_review(session, review_id)
    ensure_may_review(row, reviewer_owner)
    if row.status != Status.pending.value:
        raise ReviewConflictError(f"review item {review_id} is already closed ({row.status})")
    if any(d.reviewer == reviewer for d in row.decisions):
        raise ReviewConflictError(
            "this reviewer already decided on this item; a second, different reviewer must"
        )
    if any(same_person(owner_of(session, d.reviewer), reviewer_owner) for d in row.decisions):
        raise ReviewConflictError(
            f"{reviewer_owner} already decided on this item with another key; a second, "
            "different person must"
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


def released(row: ReviewRow, actor_id: str, role: str) -> ReviewRow:
    """The item, once confirmed, for whoever asked for it or an auditor/admin; the identity
    stays sealed from everyone else, and from everybody before the second confirmation."""
    if actor_id != row.requested_by and role not in ("auditor", "admin"):
        raise ForbiddenError("only the key that asked (or an auditor) may read this outcome")
    if row.status != Status.confirmed.value:
        raise ReviewConflictError(
            f"review item {row.id} is {row.status}: no identity is released"
            + (" until two reviewers confirm it" if row.status == Status.pending.value else "")
        )
    return row
