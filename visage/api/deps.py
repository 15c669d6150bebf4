"""Dependencies: the core, the caller's key, the access policy, purposes, uploads, rate
limits. Every role and purpose check of the API is one of these, never an ``if`` in a
handler, and each applies :mod:`visage.governance.access`, as the other doors do."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from visage.api.problems import RateLimitedError
from visage.api.uploads import read_form as read_form
from visage.api.uploads import read_images as read_images
from visage.api.uploads import read_upload as read_upload
from visage.core import Visage
from visage.governance import access
from visage.governance.access import Principal, UseCase
from visage.usecases import keys as keys_uc


def get_core(request: Request) -> Visage:
    core: Visage = request.app.state.core
    return core


Core = Annotated[Visage, Depends(get_core)]


bearer = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="`Authorization: Bearer <key>`"
)
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="`X-API-Key: <key>`"
)
"""Declared security schemes, so the OpenAPI document lists them ("Authorize" in /docs).
Neither refuses by itself (``auto_error=False``): :func:`keys_uc.authenticate` does, with
the API's 401 problem."""

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
ApiKeyHeader = Annotated[str | None, Depends(api_key_header)]


def principal(core: Core, bearer_key: BearerCredentials, x_api_key: ApiKeyHeader) -> Principal:
    token = x_api_key
    if bearer_key is not None and bearer_key.credentials.strip():
        token = bearer_key.credentials.strip()
    return keys_uc.authenticate(core, token)


Caller = Annotated[Principal, Depends(principal)]
"""Any valid key (the use-case decides what it may see)."""


def allowed(use_case: UseCase) -> Callable[[Principal], Principal]:
    """A dependency: the caller, if :data:`~visage.governance.access.POLICY` lets its role
    use ``use_case``."""

    def check(who: Caller) -> Principal:
        return access.authorize(who, use_case)

    return check


KeyAdmin = Annotated[Principal, Depends(allowed(UseCase.keys))]
ProfileAdmin = Annotated[Principal, Depends(allowed(UseCase.profile))]
RetentionAdmin = Annotated[Principal, Depends(allowed(UseCase.retention))]
Enroller = Annotated[Principal, Depends(allowed(UseCase.subjects))]
Operator = Annotated[Principal, Depends(allowed(UseCase.recognise))]
Reviewer = Annotated[Principal, Depends(allowed(UseCase.review))]
Auditor = Annotated[Principal, Depends(allowed(UseCase.audit))]
OutcomeReader = Annotated[Principal, Depends(allowed(UseCase.review_outcome))]
CameraAdmin = Annotated[Principal, Depends(allowed(UseCase.cameras))]
EventReader = Annotated[Principal, Depends(allowed(UseCase.events))]
HaltAdmin = Annotated[Principal, Depends(allowed(UseCase.halt))]


def purpose_of_operator(
    who: Operator,
    purpose: Annotated[
        str,
        Query(
            description="Why this search is made; the key must allow it.",
            examples=["access-control"],
            min_length=1,
            max_length=64,
        ),
    ],
) -> str:
    """The ``purpose`` query parameter, normalised, if the operator's key lists it."""
    return access.require_purpose(who, purpose)


PurposeFor = Annotated[str, Depends(purpose_of_operator)]
"""The stated purpose of a recognition call, checked against the caller's key."""


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

    def take(request: Request, who: Caller) -> None:
        limiters: dict[str, RateLimiter] = request.app.state.rate_limits
        limiters[kind].take(who.key_id)

    return take


IdentifyRateLimit = Depends(rate_limited("identify"))
ModelRateLimit = Depends(rate_limited("model"))


def metrics_reader(core: Core, bearer_key: BearerCredentials, x_api_key: ApiKeyHeader) -> None:
    """``/metrics`` needs an auditor or admin key, unless ``VISAGE_METRICS_PUBLIC=1``."""
    if core.settings.metrics_public:
        return
    access.authorize(principal(core, bearer_key, x_api_key), UseCase.metrics)
