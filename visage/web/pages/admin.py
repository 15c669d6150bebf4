"""Admin: console users, API keys and the deployment profile — for admins.

Every action calls the use-case the CLI and the API call (:mod:`visage.usecases.users`,
:mod:`visage.usecases.keys`, :mod:`visage.usecases.profile`) with the signed-in admin as
the audit actor. A secret (a new API key, a generated one-time password, a TOTP secret) is
rendered in the answer to the POST that made it, never put in a URL or stored, so it is
shown once. A refused action re-renders the page with the use-case's message.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from visage.api.deps import Core
from visage.api.problems import classify
from visage.core import Visage
from visage.errors import InputError, VisageError
from visage.governance.access import Role
from visage.governance.profile import Jurisdiction
from visage.usecases import keys as keys_uc
from visage.usecases import profile as profile_uc
from visage.usecases import users as users_uc
from visage.web import form_errors, i18n
from visage.web.forms import text
from visage.web.render import page
from visage.web.session import (
    CheckedForm,
    KeyAdminViewer,
    ProfileAdminViewer,
    UserAdminViewer,
    Viewer,
)

router = APIRouter(include_in_schema=False)


def purposes_of(form: FormData, name: str = "purposes") -> list[str]:
    """A comma-separated list of purposes (one text field, as typed)."""
    return [p.strip() for p in text(form, name, max_length=2000).split(",") if p.strip()]


FIELD_LABELS = {
    "name": "Name",
    "role": "Role",
    "purposes": "Purposes",
    "owner": "Owner",
    "jurisdiction": "Jurisdiction",
    "controller": "Data controller",
    "dpo_contact": "Data protection officer's contact",
    "rights_contact": "Where people exercise their rights",
    "supervisory_authority": "Supervisory authority (name and contact)",
    "dpia_ref": "DPIA reference",
    "cndp_ref": "CNDP authorisation reference",
    "watchlist_purposes": "Watchlist purposes",
    "public_space": "Cameras see a publicly accessible space",
    "law_enforcement": "The operator is a law-enforcement authority",
}
"""Fields of the admin page's forms, named by their labels (the templates' strings)."""


def invalid(exc: ValidationError, viewer: Viewer) -> InputError:
    """The first problem of a rejected input model, as the message a person reads (in the
    viewer's language)."""
    gettext = i18n.translator(viewer.lang)
    return InputError(form_errors.describe(exc.errors(), gettext, FIELD_LABELS))


def _render(
    request: Request,
    core: Visage,
    viewer: Viewer,
    *,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
    secret: dict[str, str] | None = None,
) -> HTMLResponse:
    return page(
        request,
        "admin/index.html",
        viewer,
        status_code,
        users=users_uc.list_users(core),
        keys=keys_uc.list_keys(core),
        profile=profile_uc.get_profile(core),
        roles=list(Role),
        jurisdictions=list(Jurisdiction),
        notice=notice,
        error=error,
        secret=secret,
    )


def _refused(request: Request, core: Visage, viewer: Viewer, exc: VisageError) -> HTMLResponse:
    status, _title = classify(exc)
    return _render(request, core, viewer, status_code=status, error=exc.message)


@router.get("/admin")
def admin_page(request: Request, core: Core, viewer: UserAdminViewer) -> HTMLResponse:
    return _render(request, core, viewer)


# -- users --------------------------------------------------------------------------


@router.post("/admin/users")
def add_user(
    request: Request, core: Core, viewer: UserAdminViewer, form: CheckedForm
) -> HTMLResponse:
    """A new account; with no password given, a one-time password is generated, shown
    once, and must be changed at first sign-in."""
    password = text(form, "password", max_length=1100)
    try:
        try:
            new = users_uc.NewUser(
                name=text(form, "name", max_length=200),
                role=text(form, "role", max_length=20),  # type: ignore[arg-type]
                purposes=purposes_of(form),
            )
        except ValidationError as exc:
            raise invalid(exc, viewer) from None
        generated = not password
        if generated:
            password = users_uc.new_password()
        info = users_uc.add_user(core, new, password, viewer.principal.actor, must_change=generated)
    except VisageError as exc:
        return _refused(request, core, viewer, exc)
    secret = {"kind": "password", "name": info.name, "value": password} if generated else None
    gettext = i18n.translator(viewer.lang)
    notice = gettext("User %(name)s added.", name=info.name)
    return _render(request, core, viewer, notice=notice, secret=secret, status_code=201)


def _user_action(
    request: Request, core: Visage, viewer: Viewer, name: str, action: str
) -> HTMLResponse:
    actor = viewer.principal.actor
    secret = None
    try:
        if action == "disable":
            users_uc.disable_user(core, name, actor)
        elif action == "enable":
            users_uc.enable_user(core, name, actor)
        elif action == "totp-off":
            users_uc.disable_totp(core, name, actor)
        else:
            password = users_uc.new_password()
            users_uc.set_password(core, name, password, actor, must_change=True)
            secret = {"kind": "password", "name": name, "value": password}
    except VisageError as exc:
        return _refused(request, core, viewer, exc)
    gettext = i18n.translator(viewer.lang)
    notices = {
        "disable": gettext("User %(name)s disabled; their sessions ended.", name=name),
        "enable": gettext("User %(name)s enabled.", name=name),
        "totp-off": gettext("Two-step sign-in turned off for %(name)s.", name=name),
        "password": gettext("New one-time password for %(name)s.", name=name),
    }
    return _render(request, core, viewer, notice=notices[action], secret=secret)


@router.post("/admin/users/{name}/disable")
def disable_user(
    name: str, request: Request, core: Core, viewer: UserAdminViewer, form: CheckedForm
) -> HTMLResponse:
    del form  # checked for its CSRF token
    return _user_action(request, core, viewer, name, "disable")


@router.post("/admin/users/{name}/enable")
def enable_user(
    name: str, request: Request, core: Core, viewer: UserAdminViewer, form: CheckedForm
) -> HTMLResponse:
    del form
    return _user_action(request, core, viewer, name, "enable")


@router.post("/admin/users/{name}/password")
def reset_password(
    name: str, request: Request, core: Core, viewer: UserAdminViewer, form: CheckedForm
) -> HTMLResponse:
    """A new one-time password, shown once; the user's sessions end."""
    del form
    return _user_action(request, core, viewer, name, "password")


@router.post("/admin/users/{name}/totp-off")
def totp_off(
    name: str, request: Request, core: Core, viewer: UserAdminViewer, form: CheckedForm
) -> HTMLResponse:
    """Two-step sign-in off for an account whose authenticator was lost."""
    del form
    return _user_action(request, core, viewer, name, "totp-off")


# -- API keys -----------------------------------------------------------------------


@router.post("/admin/keys")
def create_key(
    request: Request, core: Core, viewer: KeyAdminViewer, form: CheckedForm
) -> HTMLResponse:
    try:
        try:
            new = keys_uc.NewKey(
                role=text(form, "role", max_length=20),  # type: ignore[arg-type]
                purposes=purposes_of(form),
                name=text(form, "name", max_length=300),
                owner=text(form, "owner", max_length=300),
            )
        except ValidationError as exc:
            raise invalid(exc, viewer) from None
        created = keys_uc.create_key(
            core, new.role, new.purposes, new.name, actor=viewer.principal.actor, owner=new.owner
        )
    except VisageError as exc:
        return _refused(request, core, viewer, exc)
    secret = {"kind": "key", "name": created.id, "value": created.key}
    gettext = i18n.translator(viewer.lang)
    notice = gettext("API key %(id)s created.", id=created.id)
    return _render(request, core, viewer, notice=notice, secret=secret, status_code=201)


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(
    key_id: str, request: Request, core: Core, viewer: KeyAdminViewer, form: CheckedForm
) -> HTMLResponse:
    del form
    try:
        keys_uc.revoke_key(core, key_id, actor=viewer.principal.actor)
    except VisageError as exc:
        return _refused(request, core, viewer, exc)
    gettext = i18n.translator(viewer.lang)
    notice = gettext("API key %(id)s revoked.", id=key_id)
    return _render(request, core, viewer, notice=notice)


# -- deployment profile -------------------------------------------------------------


def profile_changes(form: FormData, viewer: Viewer) -> profile_uc.ProfileChanges:
    """Every field of the profile form (it shows them all): an empty text clears a
    reference, an unticked box is false, as ``PATCH /v1/profile`` would take them."""
    values: dict[str, Any] = {
        "jurisdiction": text(form, "jurisdiction", max_length=20) or None,
        "public_space": form.get("public_space") is not None,
        "law_enforcement": form.get("law_enforcement") is not None,
        "watchlist_purposes": purposes_of(form, "watchlist_purposes"),
    }
    for field in (
        "dpia_ref",
        "cndp_ref",
        "controller",
        "dpo_contact",
        "rights_contact",
        "supervisory_authority",
    ):
        values[field] = text(form, field, max_length=1000)
    try:
        return profile_uc.ProfileChanges.model_validate(values)
    except ValidationError as exc:
        raise invalid(exc, viewer) from None


@router.post("/admin/profile")
def set_profile(
    request: Request, core: Core, viewer: ProfileAdminViewer, form: CheckedForm
) -> HTMLResponse:
    try:
        profile_uc.set_profile(core, profile_changes(form, viewer), viewer.principal.actor)
    except VisageError as exc:
        return _refused(request, core, viewer, exc)
    gettext = i18n.translator(viewer.lang)
    notice = gettext("Deployment profile saved.")
    return _render(request, core, viewer, notice=notice)
