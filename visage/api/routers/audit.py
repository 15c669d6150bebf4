"""The audit log, erasure certificates, retention and reports — for auditors and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from visage.api.deps import Auditor, Core, RetentionAdmin
from visage.api.problems import PROBLEM_RESPONSES
from visage.governance.audit import AuditEntry, VerifyReport
from visage.governance.erasure import ErasureCertificate
from visage.governance.signing import parse_public_key
from visage.usecases import audit_log as audit_uc
from visage.usecases import erase as erase_uc
from visage.usecases import report as report_uc
from visage.usecases import retention as retention_uc

router = APIRouter(prefix="/v1", tags=["audit"], responses=PROBLEM_RESPONSES)


@router.get("/audit", response_model=list[AuditEntry], summary="Audit entries, oldest first")
def list_audit(
    core: Core,
    _: Auditor,
    after_seq: Annotated[
        # The sequence column is a 32-bit INTEGER: PostgreSQL refuses a larger bound (500).
        int, Query(ge=0, le=2**31 - 1, description="Only entries after this number")
    ] = 0,
    since: Annotated[datetime | None, Query(description="Only entries at or after")] = None,
    operation: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AuditEntry]:
    return audit_uc.entries(
        core, since=since, after_seq=after_seq, operation=operation, limit=limit
    )


@router.get(
    "/audit/verify",
    response_model=VerifyReport,
    summary="Check the chain, checkpoints, purge markers and witnessed head against the "
    "pinned signing key",
)
async def verify_audit(
    core: Core,
    _: Auditor,
    public_key: Annotated[
        str | None,
        Query(
            max_length=600,
            description="Check against this Ed25519 public key (hex, base64 or PEM) instead of "
            "the fingerprint pinned at init",
        ),
    ] = None,
) -> VerifyReport:
    pinned = parse_public_key(public_key) if public_key is not None else None
    return await run_in_threadpool(audit_uc.verify, core, pinned)


@router.get(
    "/audit/public-key",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/plain": {}}}},
    summary="The Ed25519 public key (PEM) that signs checkpoints and certificates",
)
def public_key(core: Core, _: Auditor) -> HTMLResponse:
    return HTMLResponse(audit_uc.public_key_pem(core), media_type="text/plain")


@router.get(
    "/erasures/{subject_id}",
    response_model=ErasureCertificate,
    summary="The signed certificate of an erasure",
)
def erasure_certificate(subject_id: str, core: Core, _: Auditor) -> ErasureCertificate:
    return erase_uc.certificate_of(core, subject_id)


@router.post(
    "/retention/run",
    response_model=retention_uc.RetentionReport,
    summary="Purge what is past its retention period now (the server also does it hourly)",
)
async def run_retention(core: Core, who: RetentionAdmin) -> retention_uc.RetentionReport:
    return await run_in_threadpool(retention_uc.run, core, who.actor)


@router.get(
    "/reports/transparency",
    response_model=report_uc.TransparencyReport,
    responses={200: {"content": {"text/html": {}}}},
    summary="Transparency figures (JSON, or HTML with charts when format=html)",
)
async def transparency(
    core: Core,
    _: Auditor,
    since: Annotated[datetime | None, Query(description="Start of the period")] = None,
    format: Annotated[
        report_uc.ReportFormat, Query(description="json, or html with charts")
    ] = report_uc.ReportFormat.json,
) -> Any:
    report = await run_in_threadpool(report_uc.transparency, core, since)
    if format is report_uc.ReportFormat.json:
        return report
    html = await run_in_threadpool(report_uc.render_transparency, report, format)
    return HTMLResponse(html)


@router.get("/reports/processing-record", summary="GDPR Art. 30 record of processing")
def processing_record(core: Core, _: Auditor) -> dict[str, Any]:
    return report_uc.processing_record(core)


@router.get("/reports/dpia-pack", summary="Facts for the DPIA (GDPR Art. 35), as measured")
async def dpia_pack(core: Core, _: Auditor) -> dict[str, Any]:
    return await run_in_threadpool(report_uc.dpia_pack, core)
