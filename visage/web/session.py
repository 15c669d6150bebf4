"""Who is looking at a page: the signed session cookie, the CSRF check, the role check.

The session token is random and known only to the browser (the store keeps its SHA-256,
see :mod:`visage.usecases.users`); the cookie also carries an HMAC of the token under a
key derived from the master key, so a cookie forged or altered outside this installation is
rejected before the store is even asked. The cookie is ``HttpOnly``, ``SameSite=Strict``,
``Secure`` when ``web_secure_cookies`` is set, and lives as long as the browser (the idle
timeout is enforced on the server).

Every page names the use-case it serves; :func:`allowed` checks it against the one policy
(:data:`visage.governance.access.POLICY`), so a page and the API route for the same thing
cannot disagree.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from visage.api.deps import Core
from visage.api.uploads import MAX_PARTS, FormBudget, read_form_data
from visage.core import Visage
from visage.governance import access
from visage.governance.access import AuthError, ForbiddenError, Principal, UseCase
from visage.usecases import users as users_uc
from visage.web import i18n

SESSION_COOKIE = "visage_session"
LANG_COOKIE = "visage_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(AuthError):
    """No valid session: the page redirects to the sign-in form (with ``next``)."""

    def __init__(self, next_url: str) -> None:
        super().__init__("please sign in")
        self.next_url = next_url


class PasswordChangeRequired(AuthError):
    """A one-time password was used: the only page open is the password form."""


class CsrfError(ForbiddenError):
    """A form posted without this session's CSRF token."""


def _cookie_key(core: Visage) -> bytes:
    return hmac.new(core.master_key, b"visage-console-cookie-v1", hashlib.sha256).digest()


def sign_cookie(core: Visage, token: str) -> str:
    mac = hmac.new(_cookie_key(core), token.encode(), hashlib.sha256).hexdigest()
    return f"{token}.{mac}"


def unsign_cookie(core: Visage, value: str | None) -> str | None:
    """The token of a cookie this installation signed, else None."""
    if not value or "." not in value:
        return None
    token, _, mac = value.rpartition(".")
    expected = hmac.new(_cookie_key(core), token.encode(), hashlib.sha256).hexdigest()
    return token if hmac.compare_digest(mac, expected) else None


def set_session_cookie(core: Visage, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sign_cookie(core, token),
        httponly=True,
        samesite="strict",
        secure=core.settings.web_secure_cookies,
        path="/",
    )


def clear_session_cookie(core: Visage, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        secure=core.settings.web_secure_cookies,
        path="/",
    )


def language(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))


@dataclass(frozen=True)
class Viewer:
    """The signed-in person on this request, and the language the page answers in."""

    principal: Principal
    csrf: str
    token: str
    lang: str
    must_change_password: bool
    totp: bool

    @property
    def name(self) -> str:
        return self.principal.key_id

    @property
    def role(self) -> access.Role:
        return self.principal.role

    def may(self, use_case: UseCase) -> bool:
        return self.principal.role in access.POLICY[use_case]


def _next_url(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return quote(path, safe="/")  # the whole path and query, as one parameter value


def current_viewer(request: Request, core: Core) -> Viewer:
    """The signed-in viewer; :class:`SignInRequired` when there is none (the console's
    error handler turns it into a redirect to the sign-in page)."""
    token = unsign_cookie(core, request.cookies.get(SESSION_COOKIE))
    if token is None:
        raise SignInRequired(_next_url(request))
    try:
        session = users_uc.resume_session(core, token)
    except AuthError:
        raise SignInRequired(_next_url(request)) from None
    viewer = Viewer(
        principal=session.principal,
        csrf=session.csrf,
        token=token,
        lang=language(request),
        must_change_password=session.must_change_password,
        totp=session.totp,
    )
    request.state.viewer = viewer
    return viewer


AnyViewer = Annotated[Viewer, Depends(current_viewer)]
"""Signed in, whatever the role, even with a password still to change."""


def _settled(viewer: AnyViewer) -> Viewer:
    if viewer.must_change_password:
        raise PasswordChangeRequired("choose a new password before going on")
    return viewer


SignedIn = Annotated[Viewer, Depends(_settled)]
"""Signed in, with a password of one's own."""


def allowed(use_case: UseCase) -> Callable[[Viewer], Viewer]:
    """A dependency: the viewer, if the policy lets its role use ``use_case``."""

    def check(viewer: SignedIn) -> Viewer:
        access.authorize(viewer.principal, use_case)
        return viewer

    return check


OverviewViewer = Annotated[Viewer, Depends(allowed(UseCase.overview))]
EnrollerViewer = Annotated[Viewer, Depends(allowed(UseCase.subjects))]
OperatorViewer = Annotated[Viewer, Depends(allowed(UseCase.recognise))]
ReviewerViewer = Annotated[Viewer, Depends(allowed(UseCase.review))]
OutcomeViewer = Annotated[Viewer, Depends(allowed(UseCase.review_outcome))]
EventViewer = Annotated[Viewer, Depends(allowed(UseCase.events))]
CameraAdminViewer = Annotated[Viewer, Depends(allowed(UseCase.cameras))]
AuditViewer = Annotated[Viewer, Depends(allowed(UseCase.audit))]
UserAdminViewer = Annotated[Viewer, Depends(allowed(UseCase.users))]
KeyAdminViewer = Annotated[Viewer, Depends(allowed(UseCase.keys))]
ProfileAdminViewer = Annotated[Viewer, Depends(allowed(UseCase.profile))]
HaltAdminViewer = Annotated[Viewer, Depends(allowed(UseCase.halt))]
"""Page dependencies: the signed-in viewer, if the policy lets its role use the page."""


MAX_FIELDS = 200
"""The most text fields one console form may carry."""


def form_budget(core: Visage) -> FormBudget:
    """What one console form may carry: as many photos as one API request (``MAX_PARTS``,
    so a body stays within 8 x ``max_bytes`` of memory) of at most ``max_bytes`` each, and
    :data:`MAX_FIELDS` text fields of 64 KB in all."""
    return FormBudget(core.settings.max_bytes, MAX_PARTS, MAX_FIELDS)


async def csrf_form(request: Request, core: Core, viewer: AnyViewer) -> FormData:
    """The posted form, once its CSRF token (field ``csrf`` or header ``X-CSRF-Token``)
    matches the session's. Every state-changing console route reads its form through this.

    The body is read by the API's upload reader, in memory, under :func:`form_budget`
    (413 as soon as it is passed), never by ``request.form()``, which spools file parts over
    1 MB to the temp dir: a photo posted here may show bystanders."""
    form = await read_form_data(request, form_budget(core))
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not isinstance(sent, str) or not hmac.compare_digest(sent, viewer.csrf):
        raise CsrfError("the form is out of date or was not sent by this console; reload it")
    return form


CheckedForm = Annotated[FormData, Depends(csrf_form)]

FormReader = Callable[[Request, Viewer], Awaitable[FormData]]
