"""Liveness, readiness and Prometheus metrics (counts and latencies, never names)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from visage.api.deps import Core, metrics_reader
from visage.api.problems import documented, problem

router = APIRouter(tags=["operations"])

log = logging.getLogger("visage.health")


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Store open, key valid, models loaded",
    responses={200: {"content": {"application/json": {}}}, **documented(503)},
)
async def readyz(core: Core) -> Response:
    def check() -> None:
        _ = core.store
        _ = core.analyzer.embedder.model
        _ = core.analyzer.detector.model

    try:
        await run_in_threadpool(check)
    except Exception:  # readiness reports, it does not raise
        # The detail (paths, key errors) is for the server's log, not for any caller.
        log.exception("not ready")
        return problem(503, "not-ready", "Not ready", "not ready; the server log has the cause")
    return Response('{"status":"ready"}', media_type="application/json")


@router.get(
    "/metrics",
    summary="Prometheus metrics (an auditor or admin key unless VISAGE_METRICS_PUBLIC=1)",
    response_class=Response,
    dependencies=[Depends(metrics_reader)],
    responses=documented(401, 403),
)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
