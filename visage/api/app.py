"""The FastAPI application: routers, problem responses, metrics and JSON access logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from visage import __version__
from visage.api import problems
from visage.api.deps import RateLimiter
from visage.api.metrics import Metrics
from visage.api.routers import admin, audit, cameras, halts, health, recognition, reviews, subjects
from visage.api.scheduler import Housekeeping
from visage.core import Visage
from visage.usecases.cameras import supervisor as camera_supervisor

log = logging.getLogger("visage.access")

DESCRIPTION = """Privacy-by-design face recognition. Only subjects who consented, for the
purposes they consented to, can be recognised; every other face is a bystander and nothing
about it is stored. Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`.
Errors are `application/problem+json` (RFC 9457)."""


def create_app(
    core: Visage,
    *,
    identify_per_minute: int | None = None,
    model_per_minute: int | None = None,
    housekeeping: bool = True,
    watch_cameras: bool = True,
) -> FastAPI:
    """The API over ``core``. With ``housekeeping``, a thread runs retention and signs the
    audit head every ``retention_interval_minutes`` while the server runs; with
    ``watch_cameras``, every enabled camera has a supervised watcher thread. Per-key rate
    limits: ``identify_per_minute`` for identify, ``model_per_minute`` shared by detect,
    verify and enrol; both default to the setting ``rate_limit_per_minute``."""
    interval = core.settings.retention_interval_minutes * 60.0 if housekeeping else 0.0
    keeper = Housekeeping(core, interval)
    watcher = camera_supervisor(core)  # the core's: every door sees the same cameras

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        keeper.start()
        if watch_cameras:
            await run_in_threadpool(watcher.start)
        try:
            yield
        finally:
            if watch_cameras:
                await run_in_threadpool(watcher.stop)
            keeper.stop()
            core.notifier.flush(timeout_s=5)

    app = FastAPI(
        title="Visage",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    mount_docs(app)
    app.state.core = core
    app.state.housekeeping = keeper
    app.state.metrics = Metrics()
    per_minute = core.settings.rate_limit_per_minute
    app.state.rate_limits = {
        "identify": RateLimiter(identify_per_minute or per_minute, "identify"),
        "model": RateLimiter(model_per_minute or per_minute, "model"),
    }
    app.state.rate_limiter = app.state.rate_limits["identify"]
    problems.install(app)
    for module in (recognition, subjects, reviews, audit, cameras, admin, halts, health):
        app.include_router(module.router)

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - started
        metrics: Metrics = request.app.state.metrics
        metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(elapsed)
        # Structured, and free of biometric data and names: the route template, not the URL.
        log.info(
            json.dumps(
                {
                    "route": path,
                    "method": request.method,
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 1),
                }
            )
        )
        return response

    return app


DOCS_ASSETS = "/docs-assets"
"""Where the Swagger UI and ReDoc scripts are served from (not ``/static``: the console's)."""


def _docs_assets_dir() -> str:
    """The Swagger UI and ReDoc files that the ``fastapi-offline`` package ships."""
    from importlib.resources import files

    return str(files("fastapi_offline") / "static")


def mount_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` from installed files, not a CDN: they work offline, on a
    host with no internet (FastAPI's defaults load their scripts from a CDN: a blank page)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=_docs_assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Visage API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Visage API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
