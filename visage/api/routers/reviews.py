"""Two-person review of watchlist matches — for reviewer keys (history for auditors; the
released outcome for the key that asked)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from visage.api.deps import Auditor, Core, OutcomeReader, Reviewer
from visage.api.problems import PROBLEM_RESPONSES
from visage.governance.review import Decision
from visage.usecases import review as review_uc

router = APIRouter(prefix="/v1/reviews", tags=["reviews"], responses=PROBLEM_RESPONSES)


@router.get(
    "",
    response_model=list[review_uc.ReviewItem],
    summary="Pending items this reviewer has not decided (no one else's decision shown)",
)
def queue(core: Core, who: Reviewer) -> list[review_uc.ReviewItem]:
    return review_uc.queue(core, who)


@router.get(
    "/history",
    response_model=list[review_uc.ReviewRecord],
    summary="Every item with its decisions (auditors)",
)
def history(core: Core, _: Auditor) -> list[review_uc.ReviewRecord]:
    return review_uc.history(core)


@router.get("/{review_id}", response_model=review_uc.ReviewItem, summary="One item")
def show(review_id: str, core: Core, who: Reviewer) -> review_uc.ReviewItem:
    return review_uc.show(core, review_id, who)


@router.get(
    "/{review_id}/probe",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the probe face crop"}},
    summary="The probe face (other faces masked)",
)
def probe(review_id: str, core: Core, who: Reviewer) -> Response:
    return Response(review_uc.probe(core, review_id, who), media_type="image/jpeg")


@router.get(
    "/{review_id}/outcome",
    response_model=review_uc.Outcome,
    summary="The released identity, once two reviewers confirmed (the key that asked, "
    "auditors, admins); 409 before",
)
def outcome(review_id: str, core: Core, who: OutcomeReader) -> review_uc.Outcome:
    return review_uc.outcome(core, review_id, who.actor)


@router.post(
    "/{review_id}/confirm",
    response_model=review_uc.DecisionResult,
    summary="Confirm: the match is released after a second, different reviewer confirms",
)
def confirm(review_id: str, core: Core, who: Reviewer) -> review_uc.DecisionResult:
    return review_uc.decide(core, review_id, who, Decision.confirm)


@router.post(
    "/{review_id}/reject",
    response_model=review_uc.DecisionResult,
    summary="Reject: one rejection discards the candidate and its probe face",
)
def reject(review_id: str, core: Core, who: Reviewer) -> review_uc.DecisionResult:
    return review_uc.decide(core, review_id, who, Decision.reject)
