"""Dependencies: the core, the caller's key, role checks, uploads, rate limits."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from visage.api.problems import RateLimitedError
from visage.api.uploads import read_form as read_form
from visage.api.uploads import read_images as read_images
from visage.api.uploads import read_upload as read_upload
from visage.app import Visage
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

    def __init__(self, per_minute: int, what: str = "model") -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.what = what
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                raise RateLimitedError(
                    f"more than {int(self.capacity)} {self.what} requests a "
                    "minute for this key; slow down",
                    retry_after=max(1, math.ceil((1 - tokens) / self.rate)),
                )
            self._buckets[key_id] = (tokens - 1, now)


def rate_limited(kind: str) -> Callable[[Request, Principal], None]:
    """A route dependency: one token from the caller's bucket of ``app.state.rate_limits``
    [``kind``] (``identify``, or ``model`` shared by detect, verify and enrol), taken
    before the body is read, so a refused request costs neither upload nor model."""

    def take(request: Request, who: Annotated[Principal, Depends(principal)]) -> None:
        limiters: dict[str, RateLimiter] = request.app.state.rate_limits
        limiters[kind].take(who.key_id)

    return take


IdentifyRateLimit = Depends(rate_limited("identify"))
ModelRateLimit = Depends(rate_limited("model"))


def metrics_reader(
    core: Core,
    authorization: Annotated[str | None, Header(description="Bearer API key")] = None,
    x_api_key: Annotated[str | None, Header(description="API key")] = None,
) -> None:
    """``/metrics`` needs an auditor or admin key, unless ``VISAGE_METRICS_PUBLIC=1``."""
    if core.settings.metrics_public:
        return
    require(Role.auditor, Role.admin)(principal(core, authorization, x_api_key))
