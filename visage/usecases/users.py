"""Console user accounts and their sessions: what the web console and ``visage users`` call.

The rules (hashing, password rules, throttling, sessions, TOTP) are in
:mod:`visage.governance.users`; here each step gets its transaction and its audit entry.
Sign-in reads in one short transaction, verifies the password outside any (argon2 takes a
tenth of a second and must not hold SQLite's write lock), then writes the outcome.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.governance import users as gov
from visage.governance.access import AuthError, Principal, Role
from visage.governance.audit import Actor
from visage.governance.audit_ops import (
    AuditOutcome,
    SignInAudit,
    SignOutAudit,
    UserCreateAudit,
    UserDisableAudit,
    UserUpdateAudit,
)
from visage.governance.users import LastAdminError as LastAdminError
from visage.governance.users import PasswordRuleError as PasswordRuleError
from visage.governance.users import ThrottledError as ThrottledError
from visage.governance.users import TotpCodeError as TotpCodeError
from visage.governance.users import TotpRequiredError as TotpRequiredError
from visage.governance.users import UserExistsError as UserExistsError
from visage.governance.users import new_password as new_password
from visage.store.schema import UserRow

FIRST_ADMIN = "admin"


class NewUser(BaseModel):
    """A new console account: the input model of every door."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=gov.NAME_RE.pattern,
        description="Letters, digits, '.', '_', '@', '-'; unique whatever the case.",
        examples=["ada.lovelace"],
    )
    role: Role = Field(description="admin, enroller, operator, reviewer or auditor.")
    purposes: list[str] = Field(
        default_factory=list,
        description="Purposes an operator account may use (at least one); none for others.",
        examples=[["access-control"]],
    )


class UserInfo(BaseModel):
    id: str
    name: str
    role: Role
    purposes: list[str]
    totp: bool
    must_change_password: bool
    created_at: datetime
    disabled_at: datetime | None


class SignedIn(BaseModel):
    token: str = Field(description="The session token for the cookie; shown once.")
    csrf: str = Field(description="The session's CSRF token, for every form.")
    principal: Principal
    must_change_password: bool


class WebSession(BaseModel):
    principal: Principal
    csrf: str
    must_change_password: bool
    totp: bool


class TotpSetup(BaseModel):
    secret: str = Field(description="Base32 secret, for typing into an authenticator app.")
    uri: str = Field(description="otpauth:// URI (for a QR code).")


def _info(row: UserRow) -> UserInfo:
    return UserInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        purposes=list(row.purposes),
        totp=row.totp_sealed is not None,
        must_change_password=row.must_change_password,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def _idle(core: Visage) -> timedelta:
    return timedelta(minutes=core.settings.web_idle_minutes)


# -- accounts -----------------------------------------------------------------------


def add_user(
    core: Visage, new: NewUser, password: str, actor: Actor, *, must_change: bool = False
) -> UserInfo:
    """A new account. ``must_change``: the password was generated and shown to an admin;
    its owner must choose their own at first sign-in."""
    with core.store.session() as session:
        row = gov.create_user(
            session, new.name, new.role, new.purposes, password, must_change=must_change
        )
        core.audit(
            session,
            actor,
            UserCreateAudit(user=row.name, user_role=new.role, purposes=list(row.purposes)),
        )
        return _info(row)


def list_users(core: Visage) -> list[UserInfo]:
    with core.store.session() as session:
        stmt = select(UserRow).order_by(UserRow.created_at, UserRow.name)
        return [_info(r) for r in session.scalars(stmt)]


def get_user(core: Visage, name: str) -> UserInfo:
    with core.store.session() as session:
        return _info(gov.require_user(session, name))


def disable_user(core: Visage, name: str, actor: Actor) -> UserInfo:
    """The account can no longer sign in; every session of it ends now."""
    with core.store.session() as session:
        row = gov.require_user(session, name)
        if row.disabled_at is None:
            gov.ensure_not_last_admin(session, row)
            row.disabled_at = datetime.now(UTC)
        gov.end_sessions(session, row.id)
        core.audit(session, actor, UserDisableAudit(user=row.name))
        return _info(row)


def enable_user(core: Visage, name: str, actor: Actor) -> UserInfo:
    with core.store.session() as session:
        row = gov.require_user(session, name)
        row.disabled_at = None
        core.audit(session, actor, UserUpdateAudit(user=row.name, change="enable"))
        return _info(row)


def set_password(
    core: Visage,
    name: str,
    password: str,
    actor: Actor,
    *,
    keep_token: str | None = None,
    must_change: bool = False,
) -> None:
    """A new password for ``name`` (by an admin, or the user through the console). Ends
    the account's sessions but ``keep_token``'s. ``must_change``: the password was
    generated for an admin to pass on, so its owner must replace it."""
    with core.store.session() as session:
        row = gov.require_user(session, name)
        gov.check_password(row.name, password)
        row.password_hash = gov.hash_password(password)
        row.must_change_password = must_change
        gov.end_sessions(session, row.id, keep_token)
        core.audit(session, actor, UserUpdateAudit(user=row.name, change="password"))


def change_own_password(core: Visage, token: str, old: str, new: str) -> None:
    """The signed-in user replaces their password, giving the current one (a stolen
    session alone cannot take the account over). Their other sessions end."""
    web = resume_session(core, token)
    name = web.principal.key_id
    now = datetime.now(UTC)
    client = f"password-change:{name.lower()}"  # its failures count for the name, as sign-in's
    with core.store.session() as session:
        wait = gov.retry_after(session, name, client, core.settings.sign_in_attempts, now)
        row = gov.require_user(session, name)
        current_hash = row.password_hash
    if wait is not None:
        raise ThrottledError("too many wrong passwords: try again later", wait)
    if not gov.verify_password(current_hash, old):
        with core.store.session() as session:
            gov.record_failure(session, name, client, now)
        raise AuthError("the current password is wrong")
    if new == old:
        raise PasswordRuleError("the new password must differ from the current one")
    set_password(core, name, new, web.principal.actor, keep_token=token)


# -- TOTP ---------------------------------------------------------------------------


def begin_totp(core: Visage, name: str) -> TotpSetup:
    """A new TOTP secret for an admin or reviewer account; nothing changes until
    :func:`confirm_totp` receives a code from the authenticator it was given to."""
    with core.store.session() as session:
        row = gov.require_user(session, name)
        gov.check_totp_role(row)
        secret = gov.new_totp_secret()
        return TotpSetup(secret=secret, uri=gov.totp_uri(secret, row.name))


def confirm_totp(core: Visage, name: str, secret: str, code: str, actor: Actor) -> None:
    """Turns TOTP on for ``name`` once ``code`` proves the authenticator has ``secret``."""
    step = gov.totp_step(secret, code)
    if step is None:
        raise TotpCodeError("that code does not match: check the authenticator's clock, retry")
    master = core.master_key
    with core.store.session() as session:
        row = gov.require_user(session, name)
        gov.check_totp_role(row)
        row.totp_sealed = gov.seal_totp(master, row.id, secret)
        row.totp_last_step = step  # the code that confirmed cannot sign anyone in
        core.audit(session, actor, UserUpdateAudit(user=row.name, change="totp"))


def disable_totp(core: Visage, name: str, actor: Actor) -> UserInfo:
    """Turns TOTP off (a lost authenticator): an admin's decision, audited."""
    with core.store.session() as session:
        row = gov.require_user(session, name)
        row.totp_sealed = None
        row.totp_last_step = None
        core.audit(session, actor, UserUpdateAudit(user=row.name, change="totp-off"))
        return _info(row)


# -- sign-in, sessions, sign-out ----------------------------------------------------


def _refuse(
    core: Visage, name: str, client: str, row: UserRow | None, reason: str, now: datetime
) -> None:
    """Records a failed attempt (it counts towards throttling) and its audit entry."""
    with core.store.session() as session:
        gov.record_failure(session, name, client, now)
        core.audit(
            session,
            gov.actor_of(row) if row is not None else gov.ANONYMOUS,
            SignInAudit(
                user=row.name if row is not None else "",
                outcome=AuditOutcome.refused,
                reason=reason,
            ),
        )


def sign_in(
    core: Visage,
    name: str,
    password: str,
    totp_code: str | None,
    client: str,
    *,
    replaces: str | None = None,
) -> SignedIn:
    """A new session for ``name``. ``client``: the caller's address (throttling counts
    failures per name and per client). ``replaces``: a session token the browser held
    before; it ends, whatever the outcome of this sign-in."""
    now = datetime.now(UTC)
    master = core.master_key
    with core.store.session() as session:
        if replaces:
            gov.end_session(session, replaces)
        wait = gov.retry_after(session, name, client, core.settings.sign_in_attempts, now)
        row = gov.find_user(session, name)
        if wait is not None:
            core.audit(
                session,
                gov.actor_of(row) if row is not None else gov.ANONYMOUS,
                SignInAudit(
                    user=row.name if row else "", outcome=AuditOutcome.refused, reason="throttled"
                ),
            )
    if wait is not None:
        raise ThrottledError(f"too many failed sign-ins: try again in {wait} s", wait)
    if row is None:
        gov.spend_hash_time(password)
        _refuse(core, name, client, None, "unknown user name", now)
        raise AuthError(gov.GENERIC_REFUSAL)
    if not gov.verify_password(row.password_hash, password):
        _refuse(core, name, client, row, "wrong password", now)
        raise AuthError(gov.GENERIC_REFUSAL)
    if row.disabled_at is not None:
        _refuse(core, name, client, row, "disabled", now)
        raise AuthError(gov.GENERIC_REFUSAL)
    step: int | None = None
    if row.totp_sealed is not None:
        if not totp_code:
            raise TotpRequiredError("enter the one-time code from your authenticator app")
        step = gov.totp_step(gov.open_totp(master, row.id, row.totp_sealed), totp_code, now)
        if step is None:
            _refuse(core, name, client, row, "wrong one-time code", now)
            raise TotpRequiredError("that one-time code is wrong or expired")
    rehash = gov.hash_password(password) if gov.needs_rehash(row.password_hash) else None
    with core.store.session() as session:
        user = session.get(UserRow, row.id)
        if user is None or user.disabled_at is not None:  # disabled in the meantime
            raise AuthError(gov.GENERIC_REFUSAL)
        if step is None or gov.spend_totp_step(session, user.id, step):
            return _open_session(core, session, user, row, rehash, now)
    # A replay: this code (or a later one) already signed someone in.
    _refuse(core, name, client, row, "one-time code already used", now)
    raise TotpRequiredError("that one-time code was already used: enter the next one")


def _open_session(
    core: Visage,
    session: Session,
    user: UserRow,
    row: UserRow,
    rehash: str | None,
    now: datetime,
) -> SignedIn:
    """The end of :func:`sign_in` once every check passed, in its last transaction."""
    if rehash is not None and user.password_hash == row.password_hash:
        user.password_hash = rehash
    gov.forget_failures(session, user.name, now)
    gov.prune_sessions(session, _idle(core), now)
    token, csrf = gov.open_session(session, user, now)
    principal = gov.principal_of(user)
    core.audit(session, principal.actor, SignInAudit(user=user.name))
    return SignedIn(
        token=token,
        csrf=csrf,
        principal=principal,
        must_change_password=user.must_change_password,
    )


def resume_session(core: Visage, token: str | None) -> WebSession:
    """The signed-in user of ``token``; :class:`AuthError` when it is missing, unknown,
    idle longer than ``web_idle_minutes`` or its user is disabled."""
    now = datetime.now(UTC)
    refused: AuthError | None = None
    with core.store.session() as session:
        try:
            row, user = gov.find_session(session, token, _idle(core), now)
        except AuthError as exc:  # commit the deletion of an idle session, then refuse
            refused = exc
        else:
            return WebSession(
                principal=gov.principal_of(user),
                csrf=row.csrf,
                must_change_password=user.must_change_password,
                totp=user.totp_sealed is not None,
            )
    assert refused is not None
    raise refused


def sign_out(core: Visage, token: str) -> None:
    """Ends the session of ``token`` (nothing happens for an unknown one)."""
    with core.store.session() as session:
        user = gov.end_session(session, token)
        if user is not None:
            core.audit(session, gov.actor_of(user), SignOutAudit(user=user.name))


def first_admin(core: Visage) -> str | None:
    """When no account exists: an ``admin`` account with a random one-time password, which
    is returned (to be shown once) and must be changed at first sign-in. Else None."""
    password = gov.new_password()
    try:
        with core.store.session() as session:
            if gov.has_users(session):
                return None
            row = gov.create_user(session, FIRST_ADMIN, Role.admin, [], password, must_change=True)
            core.audit(
                session,
                Actor.system(),
                UserCreateAudit(user=row.name, user_role=Role.admin, purposes=[]),
            )
    except IntegrityError:  # another process created it at the same instant
        return None
    return password
