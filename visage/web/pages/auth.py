"""Sign in, sign out, change one's password, choose the language."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from visage.api.deps import Core
from visage.api.uploads import FormBudget, read_form_data
from visage.governance.access import AuthError
from visage.usecases import users as users_uc
from visage.web import i18n
from visage.web.forms import text
from visage.web.render import page
from visage.web.session import (
    LANG_COOKIE,
    SESSION_COOKIE,
    AnyViewer,
    CheckedForm,
    clear_session_cookie,
    set_session_cookie,
    unsign_cookie,
)

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "visage_login_csrf"
"""Before there is a session, the sign-in form's CSRF token is a double-submit cookie."""


def safe_next(value: str | None) -> str:
    """A local path to go on to after sign-in; anything else (another host) becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _sign_in_page(
    request: Request, next_url: str, error: str = "", status_code: int = 200, name: str = ""
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "sign_in.html",
        status_code=status_code,
        next_url=safe_next(next_url),
        error=error,
        login_csrf=token,
        name=name,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/sign-in")
    return response


@router.get("/sign-in")
def sign_in_form(request: Request, next: Annotated[str, Query()] = "/") -> HTMLResponse:
    return _sign_in_page(request, next)


SIGN_IN_BUDGET = FormBudget(file_bytes=0, max_files=0, max_fields=16)
"""Anyone may post the sign-in form: a few text fields, 64 KB in all, and no file part."""


async def sign_in_fields(request: Request) -> FormData:
    """The sign-in form, read in memory under :data:`SIGN_IN_BUDGET` (413 past it)."""
    return await read_form_data(request, SIGN_IN_BUDGET)


@router.post("/sign-in")
def sign_in(
    request: Request, core: Core, form: Annotated[FormData, Depends(sign_in_fields)]
) -> Response:
    username = text(form, "username", max_length=200, strip=False)
    password = text(form, "password", max_length=1000, strip=False)
    code = text(form, "code", max_length=20, strip=False)
    csrf = text(form, "csrf", max_length=200, strip=False)
    next = text(form, "next", "/", max_length=2000, strip=False)
    gettext = i18n.translator(
        i18n.negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))
    )
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf, expected):
        return _sign_in_page(
            request, next, gettext("The form had expired; please sign in again."), 403, username
        )
    client = request.client.host if request.client else "unknown"
    try:
        signed = users_uc.sign_in(
            core,
            username.strip(),
            password,
            code.strip() or None,
            client,
            replaces=unsign_cookie(core, request.cookies.get(SESSION_COOKIE)),
        )
    except users_uc.ThrottledError as exc:
        minutes = max(1, round(exc.retry_after / 60))
        message = gettext(
            "Too many failed sign-ins. Try again in %(minutes)s minutes.", minutes=minutes
        )
        response = _sign_in_page(request, next, message, 429, username)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except users_uc.TotpRequiredError:
        message = gettext("Enter the 6-digit code from your authenticator app.")
        return _sign_in_page(request, next, message, 401, username)
    except AuthError:
        message = gettext("Unknown user name or wrong password.")
        return _sign_in_page(request, next, message, 401, username)
    target = "/password" if signed.must_change_password else safe_next(next)
    redirect = RedirectResponse(target, status_code=303)
    set_session_cookie(core, redirect, signed.token)
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/sign-in")
    return redirect


@router.post("/sign-out")
def sign_out(core: Core, viewer: AnyViewer, form: CheckedForm) -> Response:
    del form  # checked for its CSRF token
    users_uc.sign_out(core, viewer.token)
    response = RedirectResponse("/sign-in", status_code=303)
    clear_session_cookie(core, response)
    return response


@router.get("/password")
def password_form(request: Request, viewer: AnyViewer) -> HTMLResponse:
    return page(request, "password.html", viewer, error="")


@router.post("/password")
def change_password(request: Request, core: Core, viewer: AnyViewer, form: CheckedForm) -> Response:
    gettext = i18n.translator(viewer.lang)
    old, new, again = (text(form, f, max_length=1000) for f in ("current", "new", "again"))
    if new != again:
        return page(
            request,
            "password.html",
            viewer,
            status_code=422,
            error=gettext("The two new passwords differ."),
        )
    try:
        users_uc.change_own_password(core, viewer.token, old, new)
    except users_uc.ThrottledError as exc:
        minutes = max(1, round(exc.retry_after / 60))
        error = gettext(
            "Too many failed sign-ins. Try again in %(minutes)s minutes.", minutes=minutes
        )
        return page(request, "password.html", viewer, status_code=429, error=error)
    except (AuthError, users_uc.PasswordRuleError) as exc:
        error = (
            gettext("The current password is wrong.") if isinstance(exc, AuthError) else exc.message
        )
        return page(request, "password.html", viewer, status_code=422, error=error)
    return RedirectResponse("/?changed=password", status_code=303)


@router.get("/language/{lang}")
def choose_language(lang: str, next: Annotated[str, Query()] = "/") -> Response:
    """The language switch: a preference cookie (no personal data), then back."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if lang in i18n.SUPPORTED:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="strict", path="/")
    return response
