"""Your account: who you are signed in as, your password, and two-step sign-in (TOTP) for
the roles that may set it up (the rule is the use-case's: admins and reviewers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from visage.api.deps import Core
from visage.api.problems import classify
from visage.core import Visage
from visage.errors import VisageError
from visage.governance import users as users_gov
from visage.usecases import users as users_uc
from visage.web import i18n
from visage.web.forms import text
from visage.web.render import page
from visage.web.session import CheckedForm, SignedIn, Viewer

router = APIRouter(include_in_schema=False)


def _render(
    request: Request,
    viewer: Viewer,
    *,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
    totp: users_uc.TotpSetup | None = None,
) -> HTMLResponse:
    return page(
        request,
        "account.html",
        viewer,
        status_code,
        notice=notice,
        error=error,
        totp=totp,
        may_totp=viewer.role in users_gov.TOTP_ROLES,
    )


@router.get("/account")
def account(request: Request, viewer: SignedIn) -> HTMLResponse:
    return _render(request, viewer)


@router.post("/account/totp/begin")
def totp_begin(request: Request, core: Core, viewer: SignedIn, form: CheckedForm) -> HTMLResponse:
    """A new secret to type into an authenticator app; nothing changes until a code from
    it is confirmed."""
    del form
    try:
        setup = users_uc.begin_totp(core, viewer.name)
    except VisageError as exc:
        status, _title = classify(exc)
        return _render(request, viewer, status_code=status, error=exc.message)
    return _render(request, viewer, totp=setup)


def _confirm(core: Visage, viewer: Viewer, secret: str, code: str) -> None:
    users_uc.confirm_totp(core, viewer.name, secret, code, viewer.principal.actor)


@router.post("/account/totp/confirm")
def totp_confirm(request: Request, core: Core, viewer: SignedIn, form: CheckedForm) -> HTMLResponse:
    secret = text(form, "secret", max_length=200)
    code = text(form, "code", max_length=20).replace(" ", "")
    try:
        _confirm(core, viewer, secret, code)
    except VisageError as exc:
        status, _title = classify(exc)
        again = (
            users_uc.TotpSetup(secret=secret, uri=users_gov.totp_uri(secret, viewer.name))
            if secret
            else None
        )
        return _render(request, viewer, status_code=status, error=exc.message, totp=again)
    gettext = i18n.translator(viewer.lang)
    return _render(request, viewer, notice=gettext("Two-step sign-in is on for your account."))
