"""Overview: the deployment profile and its gates, counts, the audit chain, the Stop switch.

Every role sees the same overview (:func:`visage.usecases.overview.overview`; an operator's
event count covers its purposes only). Only admins get the Stop controls: halting and
resuming call :mod:`visage.usecases.halt`, like ``POST /v1/halts`` and ``visage halt``, with
the signed-in user as the audited actor (AI Act Art. 14(4)(e)).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from visage.api.deps import Core
from visage.errors import InputError, NotFoundError
from visage.governance.access import UseCase
from visage.usecases import halt as halt_uc
from visage.usecases import overview as overview_uc
from visage.web.forms import text
from visage.web.render import page
from visage.web.session import CheckedForm, HaltAdminViewer, OverviewViewer, Viewer

router = APIRouter(include_in_schema=False)

NOTICES = frozenset({"halted", "resumed"})


def _overview_page(
    request: Request,
    core: Core,
    viewer: Viewer,
    *,
    status_code: int = 200,
    error: str = "",
    notice: str = "",
    scope: str = "",
) -> HTMLResponse:
    data = overview_uc.overview(core, viewer.principal)
    return page(
        request,
        "overview.html",
        viewer,
        status_code,
        data=data,
        may_halt=viewer.may(UseCase.halt),
        error=error,
        notice=notice if notice in NOTICES else "",
        scope=scope,
    )


@router.get("/")
def overview(
    request: Request,
    core: Core,
    viewer: OverviewViewer,
    done: Annotated[str, Query(max_length=20)] = "",
    scope: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    return _overview_page(request, core, viewer, notice=done, scope=scope)


@router.post("/halts")
def stop(request: Request, core: Core, viewer: HaltAdminViewer, form: CheckedForm) -> Response:
    """Halt 1:N processing: everything ("Stop all 1:N processing", field ``all``) or the
    scope chosen in ``target`` ("Stop")."""
    scope = "all" if text(form, "all") else text(form, "target", max_length=100) or "all"
    reason = text(form, "reason", max_length=1000)
    try:
        done = halt_uc.halt(core, scope, reason, viewer.principal.actor)
    except InputError as exc:
        return _overview_page(request, core, viewer, status_code=422, error=exc.message)
    return RedirectResponse("/?" + urlencode({"done": "halted", "scope": done.scope}), 303)


@router.post("/halts/resume")
def resume(request: Request, core: Core, viewer: HaltAdminViewer, form: CheckedForm) -> Response:
    """Lift one halt: resuming is always explicit, one scope at a time."""
    scope = text(form, "scope", max_length=100)
    try:
        done = halt_uc.resume(core, scope, viewer.principal.actor)
    except (InputError, NotFoundError) as exc:
        return _overview_page(request, core, viewer, status_code=422, error=exc.message)
    return RedirectResponse("/?" + urlencode({"done": "resumed", "scope": done.scope}), 303)
