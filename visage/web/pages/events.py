"""Events: the timeline of recognitions, filtered by camera, purpose, subject and date.

Bound to the viewer's purposes by :func:`visage.usecases.events.events` (the same call as
``GET /v1/events``): an operator sees only its purposes' events, auditors and admins all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from visage.api.deps import Core
from visage.errors import InputError
from visage.usecases import events as events_uc
from visage.web.render import page
from visage.web.session import EventViewer

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
Field = Annotated[str, Query(max_length=64)]


def _day(value: str, label: str) -> datetime | None:
    """Midnight UTC of an ISO date (``2026-11-26``); InputError for anything else."""
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        raise InputError(f"{label}: expected a date such as 2026-11-26") from None


@router.get("/events")
def timeline(
    request: Request,
    core: Core,
    viewer: EventViewer,
    camera: Field = "",
    purpose: Field = "",
    subject: Annotated[str, Query(max_length=32)] = "",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    filters = {
        "camera": camera.strip(),
        "purpose": purpose.strip(),
        "subject": subject.strip(),
        "from": since.strip(),
        "to": until.strip(),
    }
    start = _day(filters["from"], "From")
    end = _day(filters["to"], "To")
    found = events_uc.events(
        core,
        viewer=viewer.principal,
        camera=filters["camera"] or None,
        purpose=filters["purpose"] or None,
        subject_id=filters["subject"] or None,
        since=start,
        until=None if end is None else end + timedelta(days=1),  # "To" is inclusive
        offset=(page_no - 1) * PER_PAGE,
        limit=PER_PAGE + 1,
    )
    kept = {k: v for k, v in filters.items() if v}

    def link(n: int) -> str:
        return "/events?" + urlencode({**kept, "page": n})

    return page(
        request,
        "events/index.html",
        viewer,
        events=found[:PER_PAGE],
        filters=filters,
        page_no=page_no,
        previous=link(page_no - 1) if page_no > 1 else "",
        next=link(page_no + 1) if len(found) > PER_PAGE else "",
        purposes=list(viewer.principal.purposes),
    )
