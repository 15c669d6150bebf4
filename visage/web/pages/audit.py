"""Audit: the chain's state and its verification, filtered entries, the JSONL export and
the signing key's fingerprint — for auditors and admins.

"Verify now" runs :func:`visage.usecases.audit_log.verify`, the check behind
``visage audit verify`` and ``GET /v1/audit/verify``; the export is
:func:`visage.usecases.audit_log.export_lines`, what ``visage audit export`` writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from visage.api.deps import Core
from visage.core import Visage
from visage.errors import InputError
from visage.governance.audit import VerifyReport
from visage.governance.audit_ops import AuditOp
from visage.usecases import audit_log as audit_uc
from visage.web import form_errors, i18n
from visage.web.render import page
from visage.web.session import AuditViewer, CheckedForm, Viewer

router = APIRouter(include_in_schema=False)

PER_PAGE = 50


FIELD_LABELS = {
    "operation": "Operation",
    "actor": "Actor",
    "purpose": "Purpose",
    "since": "From",
    "until": "To",
}
"""The filter form's fields, named by their labels (the template's strings)."""


def _query(filters: dict[str, str], page_no: int, gettext: i18n.Translator) -> audit_uc.AuditQuery:
    try:
        return audit_uc.AuditQuery.model_validate(
            {
                "operation": filters["operation"].strip() or None,
                "actor": filters["actor"].strip() or None,
                "purpose": filters["purpose"].strip() or None,
                "since": filters["from"].strip() or None,  # pydantic reads YYYY-MM-DD
                "until": filters["to"].strip() or None,
                "page": page_no,
                "per_page": PER_PAGE,
            }
        )
    except ValidationError as exc:
        raise InputError(form_errors.describe(exc.errors(), gettext, FIELD_LABELS)) from None


def _render(
    request: Request,
    core: Visage,
    viewer: Viewer,
    *,
    filters: dict[str, str],
    page_no: int = 1,
    report: VerifyReport | None = None,
) -> HTMLResponse:
    error = ""
    status_code = 200
    try:
        query = _query(filters, page_no, i18n.translator(viewer.lang))
        found = audit_uc.search(core, query)
    except InputError as exc:
        error, status_code = exc.message, 422
        found = audit_uc.search(core, audit_uc.AuditQuery(per_page=PER_PAGE))
    kept = {k: v for k, v in filters.items() if v}
    return page(
        request,
        "audit/index.html",
        viewer,
        status_code,
        state=audit_uc.chain_state(core),
        report=report,
        found=found,
        filters=filters,
        operations=[op.value for op in AuditOp],
        error=error,
        previous_url=_page_url(kept, found.page - 1) if found.page > 1 else "",
        next_url=_page_url(kept, found.page + 1) if found.page < found.pages else "",
    )


def _page_url(filters: dict[str, str], page_no: int) -> str:
    return "/audit?" + urlencode({**filters, "page": page_no})


@router.get("/audit")
def audit_page(
    request: Request,
    core: Core,
    viewer: AuditViewer,
    operation: Annotated[str, Query(max_length=32)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    purpose: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(alias="from", max_length=32)] = "",
    until: Annotated[str, Query(alias="to", max_length=32)] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    filters = {
        "operation": operation,
        "actor": actor,
        "purpose": purpose,
        "from": since,
        "to": until,
    }
    return _render(request, core, viewer, filters=filters, page_no=page_no)


@router.post("/audit/verify")
async def verify_now(
    request: Request, core: Core, viewer: AuditViewer, form: CheckedForm
) -> HTMLResponse:
    """The same check as ``visage audit verify``; the answer is shown on the Audit page."""
    del form  # checked for its CSRF token
    report = await run_in_threadpool(audit_uc.verify, core, None)
    empty = {"operation": "", "actor": "", "purpose": "", "from": "", "to": ""}
    return _render(request, core, viewer, filters=empty, report=report)


@router.get("/audit/export.jsonl")
def export(core: Core, viewer: AuditViewer) -> StreamingResponse:
    """Every entry, then every checkpoint and purge marker, as ``visage audit export``."""
    del viewer
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def lines() -> Iterator[str]:
        for line in audit_uc.export_lines(core):
            yield line + "\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="visage-audit-{stamp}.jsonl"'},
    )


@router.get("/audit/public-key.pem")
def public_key(core: Core, viewer: AuditViewer) -> PlainTextResponse:
    """The Ed25519 public key (PEM) an auditor checks signatures with, outside Visage."""
    del viewer
    return PlainTextResponse(
        audit_uc.public_key_pem(core),
        headers={"Content-Disposition": 'attachment; filename="visage-audit-key.pem"'},
    )
