"""The two-person review queue (see :mod:`visage.governance.review`).

Reviewers act through a :class:`~visage.governance.access.Principal` (their key, with its
owner); the identity behind an item is released to whoever asked only by :func:`outcome`,
after the second confirmation.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.errors import InputError, NotFoundError
from visage.gallery import repository as repo
from visage.governance import review as gov
from visage.governance.access import Principal, UseCase, authorize
from visage.governance.audit import Actor
from visage.governance.audit_ops import (
    ReviewConfirmAudit,
    ReviewInconclusiveAudit,
    ReviewOutcomeAudit,
    ReviewRejectAudit,
)
from visage.store.schema import ReviewRow, SubjectRow
from visage.usecases.references import best_references

MAX_REFERENCES = 3
"""Reference crops shown beside a probe: the candidate's best templates."""

MAX_REASON = 1000
"""Characters of a reviewer's stated reason kept in the audit log."""

_DECISION_AUDIT = {
    gov.Decision.confirm: ReviewConfirmAudit,
    gov.Decision.reject: ReviewRejectAudit,
    gov.Decision.inconclusive: ReviewInconclusiveAudit,
}


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


class ReviewMaterial(BaseModel):
    """The faces a reviewer compares before answering "same person?": the probe crop and the
    candidate's reference crops. Deliberately no name and no score (blind review: those are
    in :class:`ReviewItem`, which the console shows only once the reviewer has answered)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    id: str
    probe_jpeg: bytes | None = Field(
        description="the probe face crop, other faces masked; none once rejected"
    )
    references: list[bytes] = Field(
        description=f"the candidate's reference face crops, best quality first, at most "
        f"{MAX_REFERENCES}"
    )


class DecisionOut(BaseModel):
    reviewer: str
    decision: str
    at: datetime


class ReviewRecord(ReviewItem):
    """The closed or open item as an auditor sees it, decisions included."""

    status: gov.Status
    decided_at: datetime | None
    decisions: list[DecisionOut]


class DecisionResult(BaseModel):
    id: str
    status: gov.Status = Field(description="pending until a rejection or the second confirmation")
    released: bool = Field(description="true when this decision confirmed the match")


class Outcome(BaseModel):
    """The identity behind a confirmed item: what the one who asked may learn, and only now."""

    id: str
    status: gov.Status
    purpose: str
    subject_id: str
    name: str
    score: float
    threshold: float
    source: str
    camera: str | None
    created_at: datetime
    decided_at: datetime | None


def _name(core: Visage, session: Session, subject_id: str) -> str:
    """The subject's name, opened in memory ("" once erased)."""
    subject = session.get(SubjectRow, subject_id)
    return repo.subject_name(core.keyring, subject) if subject else ""


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


def queue(core: Visage, reviewer: Principal) -> list[ReviewItem]:
    """Pending items this reviewer may decide, without anyone else's decision."""
    with core.store.session() as session:
        return [
            _item(r, _name(core, session, r.subject_id))
            for r in gov.queue_for(session, reviewer.actor.id, reviewer.owner)
        ]


def history(core: Visage, status: gov.Status | None = None) -> list[ReviewRecord]:
    """All items with decisions: for auditors (and reviewers once an item is closed)."""
    with core.store.session() as session:
        out = []
        for r in gov.all_items(session, status):
            out.append(
                ReviewRecord(
                    **_item(r, _name(core, session, r.subject_id)).model_dump(),
                    status=gov.Status(r.status),
                    decided_at=r.decided_at,
                    decisions=[
                        DecisionOut(reviewer=d.reviewer, decision=d.decision, at=d.at)
                        for d in r.decisions
                    ],
                )
            )
        return out


def show(core: Visage, review_id: str, reviewer: Principal) -> ReviewItem:
    """One item, for a reviewer who may review it (not the one who asked for it)."""
    with core.store.session() as session:
        row = gov.get_review(session, review_id)
        gov.ensure_may_review(row, reviewer.owner)
        return _item(row, _name(core, session, row.subject_id))


def probe(core: Visage, review_id: str, reviewer: Principal | None = None) -> bytes:
    """The probe face crop (JPEG) of a pending or confirmed item."""
    with core.store.session() as session:
        row = gov.get_review(session, review_id)
        if reviewer is not None:
            gov.ensure_may_review(row, reviewer.owner)
        data = gov.probe_of(core.keyring, row)
    if not data:
        raise NotFoundError(f"review item {review_id} has no probe image (rejected or expired)")
    return data


def review_material(core: Visage, principal: Principal, review_id: str) -> ReviewMaterial:
    """Probe and reference crops of one item, for a reviewer who may review it (not the one
    who asked for it). Like :func:`probe`, reading it is not an audited operation."""
    authorize(principal, UseCase.review)
    with core.store.session() as session:
        row = gov.get_review(session, review_id)
        gov.ensure_may_review(row, principal.owner)
        probe_jpeg = gov.probe_of(core.keyring, row) or None
        subject_id = row.subject_id
    references = best_references(core, subject_id, MAX_REFERENCES)
    return ReviewMaterial(id=review_id, probe_jpeg=probe_jpeg, references=references)


def decide(
    core: Visage,
    review_id: str,
    reviewer: Principal,
    decision: gov.Decision,
    *,
    reason: str | None = None,
    blind_answer: gov.BlindAnswer | None = None,
) -> DecisionResult:
    """Record one reviewer's decision (audited, with the reason and the blind answer when
    given). ``inconclusive`` is recorded like the others but never releases anything."""
    actor = reviewer.actor
    with core.store.session() as session:
        row = gov.decide(session, review_id, actor.id, reviewer.owner, decision)
        released = gov.Status(row.status) is gov.Status.confirmed
        core.audit(
            session,
            actor,
            _DECISION_AUDIT[decision](
                purpose=row.purpose,
                subject_id=row.subject_id,
                review_id=review_id,
                status=gov.Status(row.status),
                blind_answer=blind_answer,
                reason=reason,
            ),
        )
        result = DecisionResult(id=row.id, status=gov.Status(row.status), released=released)
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
        core.notifier.send("match.confirmed", payload)
    if result.status is gov.Status.rejected:
        core.store.scrub()  # the dropped probe crop leaves no page image in the WAL
    return result


def decide_with_reason(
    core: Visage,
    review_id: str,
    reviewer: Principal,
    decision: gov.Decision,
    reason: str,
    blind_answer: gov.BlindAnswer,
) -> DecisionResult:
    """A decision made in the console: after the blind answer, and with a stated reason
    (required, at most :data:`MAX_REASON` characters), both kept in the audit entry."""
    authorize(reviewer, UseCase.review)
    reason = reason.strip()
    if not reason:
        raise InputError("a reason is required: say why you decided this")
    if len(reason) > MAX_REASON:
        raise InputError(f"the reason has more than {MAX_REASON} characters")
    return decide(core, review_id, reviewer, decision, reason=reason, blind_answer=blind_answer)


def outcome(core: Visage, review_id: str, actor: Actor) -> Outcome:
    """The released identity of a confirmed item, for the actor that asked or an auditor;
    refused (409) while it is pending or after a rejection. Each read is audited."""
    with core.store.session() as session:
        row = gov.released(gov.get_review(session, review_id), actor.id, actor.role)
        core.audit(
            session,
            actor,
            ReviewOutcomeAudit(purpose=row.purpose, subject_id=row.subject_id, review_id=row.id),
        )
        return Outcome(
            id=row.id,
            status=gov.Status(row.status),
            purpose=row.purpose,
            subject_id=row.subject_id,
            name=_name(core, session, row.subject_id),
            score=row.score,
            threshold=row.threshold,
            source=row.source,
            camera=row.camera,
            created_at=row.created_at,
            decided_at=row.decided_at,
        )
