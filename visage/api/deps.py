"""Dependencies: the core, the caller's key, role checks, uploads, rate limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from visage.api.problems import RateLimitedError
from visage.app import Visage
from visage.errors import InputError, UploadTooLargeError
from visage.governance.access import ForbiddenError, Principal, Role
from visage.usecases import keys as keys_uc


def get_core(request: Request) -> Visage:
    core: Visage = request.app.state.core
    return core


Core = Annotated[Visage, Depends(get_core)]


def principal(
    core: Core,
    authorization: Annotated[str | None, Header(description="Bearer API key")] = None,
    x_api_key: Annotated[str | None, Header(description="API key")] = None,
) -> Principal:
    token = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    return keys_uc.authenticate(core, token)


def require(*roles: Role) -> Callable[[Principal], Principal]:
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise ForbiddenError(f"role {who.role.value} may not do this (needs {allowed})")
        return who

    return check


Admin = Annotated[Principal, Depends(require(Role.admin))]
Enroller = Annotated[Principal, Depends(require(Role.enroller))]
Operator = Annotated[Principal, Depends(require(Role.operator))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
Auditor = Annotated[Principal, Depends(require(Role.auditor, Role.admin))]


class RateLimiter:
    """Token bucket per key: ``per_minute`` requests, bursts up to the same number."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                raise RateLimitedError(
                    f"more than {int(self.capacity)} identify requests a "
                    "minute for this key; slow down"
                )
            self._buckets[key_id] = (tokens - 1, now)


async def read_upload(request: Request, field: str) -> bytes:
    """An image from a multipart field or, for a single image, the raw request body.
    The size limit is enforced while reading; the content is sniffed later, never trusted
    from the filename or content type."""
    core: Visage = request.app.state.core
    limit = core.settings.max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1_000_000:
        raise UploadTooLargeError(f"upload of {declared} bytes is more than the limit of {limit}")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=4, max_fields=8)
        item = form.get(field)
        if item is None or isinstance(item, str):
            raise InputError(f"multipart field '{field}' with an image file is required")
        data = await item.read()
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise UploadTooLargeError(f"upload is more than the limit of {limit} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > limit:
        raise UploadTooLargeError(f"upload of {len(data)} bytes is more than the limit of {limit}")
    if not data:
        raise InputError("empty upload (0 bytes)")
    return data
