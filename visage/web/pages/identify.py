"""Identify / Verify (operators): upload an image, get back the picture with every face that
is not a released match masked and the matches labelled; or compare two images (1:1).

A thin door over the same use-cases as ``POST /v1/identify`` and ``POST /v1/verify``, with
the same purpose check, rate limits and the viewer's actor, so that the deployment gates,
the Stop switch, the audit log and watchlist blind review apply exactly as they do in the
API. A refusal (no face, unreadable file, gate, halt, rate) is shown on the page with its
4xx status; the form stays filled in with the purpose.
"""

from __future__ import annotations

import base64
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from visage.api.deps import Core, RateLimiter
from visage.api.problems import classify
from visage.errors import InputError, VisageError
from visage.governance import access
from visage.usecases import identify as identify_uc
from visage.usecases import review as review_uc
from visage.usecases import verify as verify_uc
from visage.usecases.limits import operating_point
from visage.usecases.profile import get_profile
from visage.web.forms import Upload, files, text
from visage.web.render import page
from visage.web.session import CheckedForm, OperatorViewer, OutcomeViewer, Viewer

router = APIRouter(include_in_schema=False)

TEMPLATE = "identify/identify.html"


def _take(request: Request, kind: str, viewer: Viewer) -> None:
    """One token from the API's bucket for this caller (``identify`` or ``model``): the
    console and the API share one ceiling per person."""
    limiters: dict[str, RateLimiter] = request.app.state.rate_limits
    limiters[kind].take(viewer.principal.key_id)


async def _one(core: Core, form: CheckedForm, name: str, label: str) -> bytes:
    uploads: list[Upload] = await files(core, form, name, max_files=1)
    if not uploads:
        raise InputError(f"choose a file for {label}")
    return uploads[0].data


def _screen(
    request: Request,
    core: Core,
    viewer: Viewer,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "purposes": list(viewer.principal.purposes),
        "chosen": "",
        "needs_ref": get_profile(core).post_remote_only,
        "reference": "",
        "limits": operating_point(core),
        "percent": percent,
        "error": None,
        "verify_error": None,
        "found": None,
        "picture": None,
        "verified": None,
    }
    values.update(context)
    return page(request, TEMPLATE, viewer, status_code, **values)


def percent(rate: float | None) -> str:
    """A rate as a percentage with three significant digits (0.000667 -> "0.0667 %")."""
    return "" if rate is None else f"{rate * 100:.3g} %"


def _refusal(exc: VisageError) -> tuple[int, dict[str, str]]:
    status, title = classify(exc)
    return status, {"title": title, "detail": exc.message}


@router.get("/identify")
def identify_form(request: Request, core: Core, viewer: OperatorViewer) -> HTMLResponse:
    return _screen(request, core, viewer)


@router.post("/identify")
async def identify(
    request: Request, core: Core, viewer: OperatorViewer, form: CheckedForm
) -> HTMLResponse:
    chosen = text(form, "purpose", max_length=64)
    reference = text(form, "authorisation_ref", max_length=200)
    try:
        purpose = access.require_purpose(viewer.principal, chosen)
        _take(request, "identify", viewer)
        data = await _one(core, form, "image", "Image")
        found = await run_in_threadpool(
            partial(
                identify_uc.identify_annotated,
                core,
                data,
                purpose,
                viewer.principal.actor,
                authorisation_ref=reference or None,
            )
        )
    except VisageError as exc:
        status, error = _refusal(exc)
        return _screen(
            request, core, viewer, status, chosen=chosen, reference=reference, error=error
        )
    metrics = request.app.state.metrics
    metrics.faces.inc(len(found.result.faces))
    metrics.matches.inc(sum(1 for f in found.result.faces if f.status is not None))
    picture = "data:image/jpeg;base64," + base64.b64encode(found.jpeg).decode()
    return _screen(
        request,
        core,
        viewer,
        chosen=purpose,
        reference=reference,
        found=found,
        picture=picture,
    )


@router.post("/identify/verify")
async def verify(
    request: Request, core: Core, viewer: OperatorViewer, form: CheckedForm
) -> HTMLResponse:
    chosen = text(form, "purpose", max_length=64)
    try:
        purpose = access.require_purpose(viewer.principal, chosen)
        _take(request, "model", viewer)
        first = await _one(core, form, "image_a", "First image")
        second = await _one(core, form, "image_b", "Second image")
        result = await run_in_threadpool(
            verify_uc.verify, core, first, second, viewer.principal.actor, purpose
        )
    except VisageError as exc:
        status, error = _refusal(exc)
        return _screen(request, core, viewer, status, chosen=chosen, verify_error=error)
    return _screen(request, core, viewer, chosen=purpose, verified=result)


@router.get("/identify/outcome/{review_id}")
def outcome(request: Request, core: Core, viewer: OutcomeViewer, review_id: str) -> HTMLResponse:
    """A watchlist search's outcome: the identity once two reviewers confirmed it, else
    its state ("awaiting two reviewers", or rejected)."""
    found = identify_uc.search_outcome(core, review_id, viewer.principal.actor)
    released = found if isinstance(found, review_uc.Outcome) else None
    return page(
        request,
        "identify/outcome.html",
        viewer,
        review_id=review_id,
        released=released,
        status=found.status.value,
        limits=operating_point(core),
        percent=percent,
    )
