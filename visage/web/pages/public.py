"""Public pages, no sign-in: the second-layer notice (GDPR Art. 12-13, EDPB Guidelines
3/2019), one notice per camera (the signs' QR codes point there), the transparency figures
per month, and the signed audit head that anyone may save and later check with ``visage
audit verify --witness``.

Everything shown comes from :mod:`visage.usecases.public_info`, which builds only
configuration and aggregates. Each client address has a token bucket
(:data:`PER_MINUTE` requests a minute, then 429 with Retry-After). Answers may be cached
for :data:`MAX_AGE_S` seconds, no longer, so that a Stop pressed by an admin shows at the
next refresh. Nothing here runs a model or reads a template, so the pages keep working
while 1:N is halted.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from visage.api.deps import Core, RateLimiter
from visage.api.problems import RateLimitedError
from visage.usecases import public_info
from visage.web.render import page

PER_MINUTE = 60
"""Requests a minute per client address to ``/public/`` (bursts of as many)."""
MAX_AGE_S = 10
"""``Cache-Control: public, max-age=10``: short, so that a Stop shows within one refresh."""
CACHE = f"public, max-age={MAX_AGE_S}"
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'"
"""Matplotlib's SVG carries its own ``<style>``; the chart is an image with no script."""


def rate_limit(request: Request) -> None:
    """One token from the caller's address's bucket; the app holds the buckets."""
    limiter: RateLimiter | None = getattr(request.app.state, "public_rate_limit", None)
    if limiter is None:
        limiter = RateLimiter(PER_MINUTE, what="public page")
        request.app.state.public_rate_limit = limiter
    address = request.client.host if request.client else "unknown"
    try:
        limiter.take(address)
    except RateLimitedError as exc:
        raise StarletteHTTPException(
            429,
            detail="Too many requests: please wait a minute",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc


router = APIRouter(prefix="/public", include_in_schema=False, dependencies=[Depends(rate_limit)])

Slug = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Chart = Annotated[str, Path(pattern=r"^(searches|outcomes)$")]


def _cached(response: Response) -> Response:
    response.headers["Cache-Control"] = CACHE
    return response


@router.get("/")
def index(request: Request, core: Core) -> Response:
    return _cached(page(request, "public/index.html", info=public_info.notice(core)))


@router.get("/cameras/{slug}")
def camera(request: Request, core: Core, slug: Slug) -> Response:
    notice = public_info.camera_notice(core, slug)
    info = public_info.notice(core)
    return _cached(page(request, "public/camera.html", camera=notice, info=info))


@router.get("/transparency")
def transparency(request: Request, core: Core) -> Response:
    figures = public_info.transparency(core)
    return _cached(page(request, "public/transparency.html", figures=figures))


@router.get("/transparency/{chart}.svg")
def chart(core: Core, chart: Chart) -> Response:
    svg = _chart_svg(public_info.transparency(core), chart)
    response = Response(svg, media_type="image/svg+xml")
    response.headers["Content-Security-Policy"] = CHART_CSP
    return _cached(response)


@router.get("/audit-head")
def audit_head(request: Request, core: Core) -> Response:
    return _cached(page(request, "public/audit_head.html", head=public_info.audit_head(core)))


@router.get("/audit-head.json")
def audit_head_json(core: Core) -> Response:
    body = public_info.audit_head(core).model_dump_json()
    return _cached(Response(body + "\n", media_type="application/json"))


def _chart_svg(figures: public_info.PublicTransparency, chart: str) -> bytes:
    """A bar chart per month, rendered on the server (no script on the page)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in threads

    months = [m.month for m in figures.months]
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.subplots()
    xs = list(range(len(months)))
    if chart == "searches":
        bottom = [0] * len(months)
        for purpose in figures.purposes:
            values = [m.searches.get(purpose, 0) for m in figures.months]
            ax.bar(xs, values, bottom=bottom, label=purpose)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel("1:N searches")
    else:
        series = [
            ("matches", [m.matches for m in figures.months]),
            ("confirmed", [m.confirmations for m in figures.months]),
            ("rejected", [m.rejections for m in figures.months]),
            ("erasures", [m.erasures for m in figures.months]),
            ("purged", [m.purged for m in figures.months]),
        ]
        width = 0.16
        for i, (label, values) in enumerate(series):
            ax.bar([x + (i - 2) * width for x in xs], values, width, label=label)
        ax.set_ylabel("count")
    ax.set_xticks(xs, months)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
