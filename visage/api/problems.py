"""Errors as RFC 9457 ``application/problem+json``; never a 5xx for bad input."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from visage.api.hints import hint_for
from visage.errors import (
    ConsentError,
    ImageTooLargeError,
    InputError,
    MasterKeyError,
    ModelMissingError,
    NotFoundError,
    UploadTooLargeError,
    VisageError,
)
from visage.governance.access import AuthError, ForbiddenError
from visage.governance.halt import HaltedError
from visage.governance.profile import GateError, IdentifyRateError
from visage.governance.review import ReviewConflictError
from visage.governance.users import LastAdminError, ThrottledError, UserExistsError
from visage.store.keyring import KeyDestroyedError

PROBLEM = "application/problem+json"

_STATUS: list[tuple[type[VisageError], int, str, str]] = [
    (ImageTooLargeError, 413, "image-too-large", "Image too large"),
    (UploadTooLargeError, 413, "upload-too-large", "Upload too large"),
    (InputError, 422, "bad-input", "Unusable input"),
    (NotFoundError, 404, "not-found", "Not found"),
    (ConsentError, 409, "consent", "Consent record missing or invalid"),
    (ReviewConflictError, 409, "review-conflict", "Review decision not allowed"),
    (KeyDestroyedError, 410, "erased", "The subject's data was erased"),
    (AuthError, 401, "unauthenticated", "Authentication required"),
    (ForbiddenError, 403, "forbidden", "Not allowed for this key"),
    (IdentifyRateError, 429, "rate-limited", "Too many requests"),
    (ThrottledError, 429, "throttled", "Too many failed attempts"),
    (UserExistsError, 409, "user-exists", "User name taken"),
    (LastAdminError, 409, "last-admin", "The last admin account stays enabled"),
    (GateError, 403, "deployment-gate", "Refused by the deployment profile"),
    # 423, not 503: a halt is a person's deliberate decision, not a fault of the server;
    # retrying does not help until an admin resumes, and health checks stay green.
    (HaltedError, 423, "halted", "1:N processing halted by an admin"),
    (ModelMissingError, 503, "model-missing", "Model not installed"),
    (MasterKeyError, 503, "key-problem", "Master key problem"),
]


class Problem(BaseModel):
    """RFC 9457 problem details; ``hint`` (an extension member) says what this API
    expects from the client to fix it, where that is known."""

    type: str
    title: str
    status: int
    detail: str
    hint: str | None = None


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


PROBLEM_RESPONSES = documented(400, 401, 403, 404, 409, 410, 413, 422, 423, 429, 503)
"""The error responses every /v1 route may give, for the OpenAPI document."""


class RateLimitedError(VisageError):
    """Too many requests for this key; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, message: str, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    hint: str | None = None,
    extensions: dict[str, object] | None = None,
) -> JSONResponse:
    body: dict[str, object] = {
        "type": f"https://visage.local/problems/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update(extensions or {})  # RFC 9457 extension members
    if hint is not None:
        body["hint"] = hint
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def classify(exc: VisageError) -> tuple[int, str]:
    """The HTTP status and title of a domain error, as the API answers it; the web console
    uses the same mapping for its error pages."""
    if isinstance(exc, RateLimitedError):
        return 429, "Too many requests"
    for cls, status, _kind, title in _STATUS:
        if isinstance(exc, cls):
            return status, title
    return 400, "Bad request"


def install(app: FastAPI) -> None:
    @app.exception_handler(VisageError)
    async def visage_error(_: Request, exc: VisageError) -> JSONResponse:
        if isinstance(exc, RateLimitedError):
            retry = {"Retry-After": str(exc.retry_after)}
            return problem(429, "rate-limited", "Too many requests", exc.message, retry)
        extra = getattr(exc, "problem_extensions", None)
        for cls, status, kind, title in _STATUS:
            if isinstance(exc, cls):
                return problem(
                    status, kind, title, exc.message, hint=hint_for(exc), extensions=extra
                )
        return problem(400, "bad-request", "Bad request", exc.message, hint=hint_for(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(422, "validation", "Invalid request", f"{where}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http", str(exc.detail), str(exc.detail))
