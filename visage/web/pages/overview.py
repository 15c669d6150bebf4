"""Overview: the deployment profile and its gates, counts, the audit chain, the Stop switch."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from visage.web.render import page
from visage.web.session import OverviewViewer

router = APIRouter(include_in_schema=False)


@router.get("/")
def overview(request: Request, viewer: OverviewViewer) -> HTMLResponse:
    return page(request, "overview.html", viewer)
