"""The server: the API of :mod:`visage.api.app` with the console mounted beside it.

Console pages answer in HTML (errors included, never a traceback), carry a strict Content
Security Policy (no inline script, no framing) and are left out of the OpenAPI document; the
API under ``/v1`` keeps its JSON problems.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from visage.api.app import create_app
from visage.api.problems import classify
from visage.core import Visage
from visage.errors import VisageError
from visage.web import form_errors, i18n
from visage.web.pages import (
    account,
    admin,
    audit,
    auth,
    cameras,
    events,
    identify,
    overview,
    public,
    reports,
    reviews,
    subjects,
)
from visage.web.render import STATIC, page
from visage.web.session import PasswordChangeRequired, SignInRequired, language

API_PREFIXES = ("/v1/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/metrics")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""No inline script or style, nothing from another origin, never inside someone's frame."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

SCREENS: list[Any] = [
    auth,
    account,
    overview,
    subjects,
    identify,
    audit,
    reports,
    admin,
    reviews,
    events,
    cameras,
    public,
]
"""Screen modules whose ``router`` the console includes (each screen adds itself here)."""


def is_console(path: str) -> bool:
    return not path.startswith(API_PREFIXES)


def create_server(core: Visage, **api_options: Any) -> FastAPI:
    """The API (``create_app(core, **api_options)``) and the web console in one app."""
    app = create_app(core, **api_options)
    mount_console(app)
    return app


def mount_console(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for screen in SCREENS:
        app.include_router(screen.router)
    _install_error_pages(app)

    @app.middleware("http")
    async def console_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if is_console(request.url.path):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if not request.url.path.startswith("/static/"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response


def _install_error_pages(app: FastAPI) -> None:
    """Console requests get HTML error pages; API requests keep the API's handlers."""
    api_handlers = dict(app.exception_handlers)

    async def visage_error(request: Request, exc: Exception) -> Response:
        if not is_console(request.url.path):
            return await api_handlers[VisageError](request, exc)  # type: ignore[no-any-return]
        if isinstance(exc, SignInRequired):
            return RedirectResponse(f"/sign-in?next={exc.next_url}", status_code=303)
        if isinstance(exc, PasswordChangeRequired):
            return RedirectResponse("/password", status_code=303)
        assert isinstance(exc, VisageError)
        status, title = classify(exc)
        viewer = getattr(request.state, "viewer", None)
        return page(request, "error.html", viewer, status, title=title, detail=exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not is_console(request.url.path):
            return await api_handlers[StarletteHTTPException](request, exc)  # type: ignore[no-any-return]
        assert isinstance(exc, StarletteHTTPException)
        viewer = getattr(request.state, "viewer", None)
        title = "Page not found" if exc.status_code == 404 else str(exc.detail)
        response = page(request, "error.html", viewer, exc.status_code, title=title, detail="")
        response.headers.update(exc.headers or {})  # Retry-After of a 429, for one
        return response

    async def invalid(request: Request, exc: Exception) -> Response:
        if not is_console(request.url.path):
            return await api_handlers[RequestValidationError](request, exc)  # type: ignore[no-any-return]
        assert isinstance(exc, RequestValidationError)
        viewer = getattr(request.state, "viewer", None)
        gettext = i18n.translator(viewer.lang if viewer is not None else language(request))
        detail = form_errors.describe(exc.errors(), gettext, skip=1)  # after "body"/"query"
        return page(request, "error.html", viewer, 422, title="Invalid form", detail=detail)

    app.add_exception_handler(VisageError, visage_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
