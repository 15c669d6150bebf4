"""The two-person review queue (see :mod:`visage.governance.review`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from visage.app import Visage
from visage.errors import NotFoundError
from visage.governance import review as gov
from visage.governance.audit import Actor
from visage.store.schema import ReviewRow, SubjectRow


class ReviewItem(BaseModel):
    """What a reviewer sees: the candidate, the score against the threshold, the quality.
    Never another reviewer's decision."""

    id: str
    purpose: str
    created_at: datetime
    subject_id: str
    subject_name: str
    score: float
    threshold: float
    quality: float
    source: str
    camera: str | None
    has_probe: bool = Field(description="a probe face crop can be fetched for this item")


class DecisionOut(BaseModel):
    reviewer: str
    decision: str
    at: datetime


class ReviewRecord(ReviewItem):
    """The closed or open item as an auditor sees it, decisions included."""

    status: str
    decided_at: datetime | None
    decisions: list[DecisionOut]


class DecisionResult(BaseModel):
    id: str
    status: str = Field(description="pending until a rejection or the second confirmation")
    released: bool = Field(description="true when this decision confirmed the match")


def _item(row: ReviewRow, name: str) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        purpose=row.purpose,
        created_at=row.created_at,
        subject_id=row.subject_id,
        subject_name=name,
        score=row.score,
        threshold=row.threshold,
        quality=row.quality,
        source=row.source,
        camera=row.camera,
        has_probe=row.probe is not None,
    )


def queue(app: Visage, reviewer: Actor) -> list[ReviewItem]:
    """Pending items this reviewer has not decided, without anyone else's decision."""
    with app.store.session() as session:
        return [
            _item(r, session.get(SubjectRow, r.subject_id).name)  # type: ignore[union-attr]
            for r in gov.queue_for(session, reviewer.id)
        ]


def history(app: Visage, status: gov.Status | None = None) -> list[ReviewRecord]:
    """All items with decisions: for auditors (and reviewers once an item is closed)."""
    with app.store.session() as session:
        out = []
        for r in gov.all_items(session, status):
            name = session.get(SubjectRow, r.subject_id)
            out.append(
                ReviewRecord(
                    **_item(r, name.name if name else "").model_dump(),
                    status=r.status,
                    decided_at=r.decided_at,
                    decisions=[
                        DecisionOut(reviewer=d.reviewer, decision=d.decision, at=d.at)
                        for d in r.decisions
                    ],
                )
            )
        return out


def show(app: Visage, review_id: str) -> ReviewItem:
    with app.store.session() as session:
        row = gov.get_review(session, review_id)
        subject = session.get(SubjectRow, row.subject_id)
        return _item(row, subject.name if subject else "")


def probe(app: Visage, review_id: str) -> bytes:
    """The probe face crop (JPEG) of a pending or confirmed item."""
    with app.store.session() as session:
        data = gov.probe_of(app.keyring, gov.get_review(session, review_id))
    if not data:
        raise NotFoundError(f"review item {review_id} has no probe image (rejected or expired)")
    return data


def decide(app: Visage, review_id: str, reviewer: Actor, decision: gov.Decision) -> DecisionResult:
    with app.store.session() as session:
        row = gov.decide(session, review_id, reviewer.id, decision)
        released = row.status == gov.Status.confirmed.value
        app.audit(
            session,
            reviewer,
            f"review.{decision.value}",
            purpose=row.purpose,
            subject_id=row.subject_id,
            review_id=review_id,
            status=row.status,
        )
        result = DecisionResult(id=row.id, status=row.status, released=released)
        payload = {
            "review_id": row.id,
            "subject_id": row.subject_id,
            "purpose": row.purpose,
            "score": row.score,
            "source": row.source,
            "camera": row.camera,
            "at": row.decided_at,
        }
    if released:
        app.notifier.send("match.confirmed", payload)
    return result
