"""Liveness, readiness and Prometheus metrics (counts and latencies, never names)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from visage.api.deps import Core
from visage.api.problems import documented, problem

router = APIRouter(tags=["operations"])


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
    except Exception as exc:  # readiness reports, it does not raise
        return problem(503, "not-ready", "Not ready", f"{type(exc).__name__}: {exc}")
    return Response('{"status":"ready"}', media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
