"""Reports: the transparency report, the Art. 30 record and the DPIA facts pack, each to
read in the console and to download — for auditors and admins (the policy's ``audit``
use-case, as ``/v1/reports/...``).

The transparency report is the API's self-contained HTML document (inline ``<style>``,
charts as ``data:`` images, no script). The console forbids inline styles and framing, so
the document is served on its own path with its own policy — styles inline, images from
``data:`` only, nothing else, framed by this origin only — and embedded in an ``<iframe>``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from visage.api.deps import Core
from visage.core import Visage
from visage.usecases import report as report_uc
from visage.web.render import page
from visage.web.session import AuditViewer

router = APIRouter(include_in_schema=False)

REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
"""The transparency document's own policy: its inline style and data: charts, nothing else."""


def _attachment(name: str, extension: str) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    filename = f"visage-{name}-{stamp}.{extension}"
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _transparency_html(core: Visage) -> str:
    report = report_uc.transparency(core)
    return report_uc.render_transparency(report, report_uc.ReportFormat.html)


@router.get("/reports")
def reports_page(request: Request, viewer: AuditViewer) -> HTMLResponse:
    return page(request, "reports/index.html", viewer)


@router.get("/reports/transparency.html")
async def transparency_html(
    core: Core,
    viewer: AuditViewer,
    download: Annotated[bool, Query(description="As a file to save")] = False,
) -> HTMLResponse:
    del viewer
    html = await run_in_threadpool(_transparency_html, core)
    headers = {
        "Content-Security-Policy": REPORT_CSP,
        "X-Frame-Options": "SAMEORIGIN",
    }
    if download:
        headers.update(_attachment("transparency", "html"))
    return HTMLResponse(html, headers=headers)


@router.get("/reports/transparency.json")
async def transparency_json(core: Core, viewer: AuditViewer) -> Response:
    del viewer
    report = await run_in_threadpool(report_uc.transparency, core)
    body = report_uc.render_transparency(report, report_uc.ReportFormat.json)
    return Response(
        body, media_type="application/json", headers=_attachment("transparency", "json")
    )


@router.get("/reports/processing-record")
async def processing_record(request: Request, core: Core, viewer: AuditViewer) -> HTMLResponse:
    record = await run_in_threadpool(report_uc.processing_record, core)
    return page(
        request,
        "reports/document.html",
        viewer,
        heading="Record of processing activities (GDPR Art. 30)",
        document=record,
        download="/reports/processing-record.json",
    )


@router.get("/reports/dpia-pack")
async def dpia_pack(request: Request, core: Core, viewer: AuditViewer) -> HTMLResponse:
    pack = await run_in_threadpool(report_uc.dpia_pack, core)
    return page(
        request,
        "reports/document.html",
        viewer,
        heading="DPIA facts pack (GDPR Art. 35)",
        document=pack,
        download="/reports/dpia-pack.json",
    )


def _json_download(document: dict[str, Any], name: str) -> Response:
    body = json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
    return Response(body, media_type="application/json", headers=_attachment(name, "json"))


@router.get("/reports/processing-record.json")
async def processing_record_json(core: Core, viewer: AuditViewer) -> Response:
    del viewer
    record = await run_in_threadpool(report_uc.processing_record, core)
    return _json_download(record, "processing-record")


@router.get("/reports/dpia-pack.json")
async def dpia_pack_json(core: Core, viewer: AuditViewer) -> Response:
    del viewer
    pack = await run_in_threadpool(report_uc.dpia_pack, core)
    return _json_download(pack, "dpia-pack")
