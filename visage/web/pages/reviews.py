"""Reviews: watchlist candidates, one at a time, blind first (issue 13, screen 5).

Step 1 shows only the faces — the probe crop beside the candidate's reference crops — and asks
"same person?". The name and the score are not in that page at all. Step 2 is served only
in answer to the step-1 POST: it shows the name and score, and asks for the decision with a
reason. The blind answer travels to the decision as a hidden field with an HMAC bound to this
session and item, so the audit entry records the answer that was given *before* the name was
seen, not one edited afterwards.

The queue position lives in the URL (``/reviews?after=<id>`` or ``?before=<id>``), so skipping
or deciding never loses the reviewer's place. No other reviewer's decision is ever shown: the
use-case's queue and item models do not carry them, and after a decision this page says only
that it was recorded. Two-person rules (two different people, not the one who asked) are the
use-case's; their refusals come back as error pages.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from visage.api.deps import Core
from visage.core import Visage
from visage.errors import InputError, NotFoundError, VisageError
from visage.governance.review import BlindAnswer, Decision
from visage.usecases import review as review_uc
from visage.usecases.limits import operating_point
from visage.usecases.review import ReviewItem
from visage.web.forms import text
from visage.web.render import page
from visage.web.session import CheckedForm, ReviewerViewer, Viewer

router = APIRouter(include_in_schema=False)

ANSWERS: tuple[tuple[BlindAnswer, str, str], ...] = (
    (BlindAnswer.same, "Same person", "s"),
    (BlindAnswer.different, "Not the same person", "n"),
    (BlindAnswer.cannot_tell, "Cannot tell", "c"),
)
"""Step 1: the answer, its button label (English source) and its keyboard shortcut."""

ANSWER_LABELS = {answer: label for answer, label, _ in ANSWERS}

DECISIONS: tuple[tuple[Decision, str, str, str], ...] = (
    (
        Decision.confirm,
        "Confirm",
        "",
        "It is the same person: released only once a second reviewer confirms too.",
    ),
    (
        Decision.reject,
        "Reject",
        "danger",
        "It is not the same person: the candidate and its probe face are discarded at once.",
    ),
    (
        Decision.inconclusive,
        "Inconclusive",
        "secondary",
        "You cannot decide: the item stays "
        "pending for other reviewers and is never released on your word.",
    ),
)
"""Step 2: the decision, its button label, its button class and what it does."""

NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Place:
    """Where the reviewer is in their queue: the item shown (if any) and its position."""

    item: ReviewItem | None
    position: int
    total: int


def _neighbours(
    core: Visage, viewer: Viewer, items: list[ReviewItem], ref: str
) -> tuple[int, int] | None:
    """Indexes of the items just after and just before ``ref`` in the queue. ``ref`` may have
    left the queue (decided, closed): its place is then found from the time it was queued.
    None when it cannot be found at all (then the queue starts again from the first)."""
    ids = [i.id for i in items]
    if ref in ids:
        k = ids.index(ref)
        return k + 1, k - 1
    try:
        at = review_uc.show(core, ref, viewer.principal).created_at
    except VisageError:
        return None
    k = next((k for k, i in enumerate(items) if i.created_at > at), len(items))
    return k, k - 1


def place(core: Visage, viewer: Viewer, after: str | None, before: str | None) -> Place:
    items = review_uc.queue(core, viewer.principal)
    index = 0
    ref = after or before
    found = _neighbours(core, viewer, items, ref) if ref else None
    if found is not None:
        index = found[0] if after else max(found[1], 0)
    if index >= len(items):
        return Place(None, 0, len(items))
    return Place(items[index], index + 1, len(items))


def proof(core: Visage, viewer: Viewer, review_id: str, answer: BlindAnswer) -> str:
    """HMAC binding a blind answer to this session and item (see the module docstring)."""
    key = hmac.new(core.master_key, b"visage-console-blind-answer-v1", hashlib.sha256).digest()
    message = f"{viewer.token}|{review_id}|{answer.value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _answer(value: str) -> BlindAnswer:
    try:
        return BlindAnswer(value)
    except ValueError:
        raise InputError('answer the question "Same person?" first') from None


def _references(core: Visage, viewer: Viewer, review_id: str) -> tuple[bool, int]:
    material = review_uc.review_material(core, viewer.principal, review_id)
    return material.probe_jpeg is not None, len(material.references)


@router.get("/reviews", response_class=HTMLResponse)
def queue_page(
    request: Request,
    core: Core,
    viewer: ReviewerViewer,
    after: str | None = None,
    before: str | None = None,
    recorded: bool = False,
) -> HTMLResponse:
    """Step 1 for the next item of the queue (after/before an item, else the first)."""
    where = place(core, viewer, after, before)
    has_probe, references = _references(core, viewer, where.item.id) if where.item else (False, 0)
    return page(
        request,
        "reviews/blind.html",
        viewer,
        where=where,
        item_id=where.item.id if where.item else "",
        has_probe=has_probe,
        references=references,
        answers=ANSWERS,
        limits=operating_point(core),
        recorded=recorded,
        at_end=bool(after) and where.item is None and where.total > 0,
    )


def _decision_page(
    request: Request,
    core: Visage,
    viewer: Viewer,
    review_id: str,
    answer: BlindAnswer,
    *,
    status_code: int = 200,
    error: str = "",
    reason: str = "",
) -> HTMLResponse:
    item = review_uc.show(core, review_id, viewer.principal)
    has_probe, references = _references(core, viewer, review_id)
    return page(
        request,
        "reviews/decide.html",
        viewer,
        status_code,
        item=item,
        has_probe=has_probe,
        references=references,
        answer=answer,
        answer_label=ANSWER_LABELS[answer],
        proof=proof(core, viewer, review_id, answer),
        decisions=DECISIONS,
        limits=operating_point(core),
        error=error,
        reason=reason,
        max_reason=review_uc.MAX_REASON,
    )


@router.post("/reviews/{review_id}/answer", response_class=HTMLResponse)
def answer(
    review_id: str, request: Request, core: Core, viewer: ReviewerViewer, form: CheckedForm
) -> HTMLResponse:
    """Step 2, served only in answer to the blind "same person?" of step 1."""
    return _decision_page(request, core, viewer, review_id, _answer(text(form, "answer")))


@router.post("/reviews/{review_id}/decide", response_model=None)
def decide(
    review_id: str, request: Request, core: Core, viewer: ReviewerViewer, form: CheckedForm
) -> Response:
    given = _answer(text(form, "answer"))
    if not hmac.compare_digest(text(form, "proof"), proof(core, viewer, review_id, given)):
        raise InputError('answer the question "Same person?" first (the answer was altered)')
    try:
        decision = Decision(text(form, "decision"))
    except ValueError:
        raise InputError("choose Confirm, Reject or Inconclusive") from None
    reason = text(form, "reason", max_length=review_uc.MAX_REASON)
    try:
        review_uc.decide_with_reason(core, review_id, viewer.principal, decision, reason, given)
    except InputError as exc:  # the reviewer keeps the page, with what they typed
        return _decision_page(
            request,
            core,
            viewer,
            review_id,
            given,
            status_code=422,
            error=exc.message,
            reason=reason,
        )
    return RedirectResponse(f"/reviews?after={review_id}&recorded=1", status_code=303)


@router.get("/reviews/{review_id}/probe.jpg")
def probe_image(review_id: str, core: Core, viewer: ReviewerViewer) -> Response:
    data = review_uc.probe(core, review_id, viewer.principal)
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


@router.get("/reviews/{review_id}/reference/{n}.jpg")
def reference_image(review_id: str, n: int, core: Core, viewer: ReviewerViewer) -> Response:
    """The candidate's ``n``-th reference face crop (1 = best quality)."""
    references = review_uc.review_material(core, viewer.principal, review_id).references
    if not 1 <= n <= len(references):
        raise NotFoundError(f"review item {review_id} has no reference face {n}")
    return Response(references[n - 1], media_type="image/jpeg", headers=NO_STORE)
