"""Console user accounts: named people with one role each, who sign in to the web console.

* **Passwords** are hashed with argon2id (argon2-cffi's :class:`PasswordHasher`, RFC 9106
  parameters); a hash made with older parameters is replaced at the next sign-in. A password
  has at least :data:`PASSWORD_MIN` characters and is not the user's name.
* **Sessions**: a sign-in mints a new random token (32 bytes) and a CSRF token; only the
  SHA-256 of the session token is stored, so a copy of the database holds no usable token.
  A session unused for ``web_idle_minutes`` is ended; disabling a user ends all of theirs.
* **Throttling**: after ``sign_in_attempts`` failures in :data:`THROTTLE_WINDOW` for one
  user name, or from one client, sign-in is refused without looking at the password.
* **TOTP** (RFC 6238, optional, admins and reviewers): the shared secret is sealed with
  AES-GCM under a key derived from the master key, bound to the user's id. A code is
  accepted once (RFC 6238 §5.2): the user's last accepted time step is kept, and a code of
  that step or an earlier one is refused, so a code read over a shoulder or from a
  recording cannot be replayed while it is still valid.

The names a caller types are compared case-insensitively; a name is stored as given.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import Parameters, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from visage.errors import InputError, NotFoundError, VisageError
from visage.governance.access import AuthError, KeyPurposeRequiredError, Principal, Role
from visage.governance.audit import Actor
from visage.governance.consent import normalise_purpose
from visage.store import crypto
from visage.store.keyring import derive_key
from visage.store.schema import SignInFailureRow, UserRow, WebSessionRow

NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,59}$")
"""59: the actor id ``user:<name>`` must fit the 64-character actor columns."""
NAME_RULE = "a user name has 1 to 59 letters, digits, '.', '_', '@' or '-'"
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
"""Longer input is refused before hashing (argon2 would take it, but nobody types that)."""
THROTTLE_WINDOW = timedelta(minutes=15)
TOKEN_BYTES = 32
TOTP_ROLES = frozenset({Role.admin, Role.reviewer})
TOTP_ISSUER = "Visage"
TOTP_KEY_LABEL = "visage console totp"
"""HKDF label of the key that seals users' TOTP secrets (``users.totp_sealed``)."""
GENERIC_REFUSAL = "unknown user name or wrong password"
"""The one message for an unknown name, a wrong password and a disabled account."""
ANONYMOUS = Actor("anonymous", "none")
"""The actor of a refused sign-in under a name that is no account: what was typed is not
written to the audit log (it is sometimes a password typed in the wrong field)."""

PRODUCTION_HASHING = RFC_9106_LOW_MEMORY
"""argon2id, RFC 9106 low-memory profile (m=65536 KiB, t=3, p=4): what every hash uses."""


class _Hashing:
    """The hasher in use. Always :data:`PRODUCTION_HASHING`, except inside
    :func:`hashing_parameters` (a test suite's switch, as Django's test ``PASSWORD_HASHERS``)."""

    hasher = PasswordHasher.from_parameters(PRODUCTION_HASHING)


@contextlib.contextmanager
def hashing_parameters(parameters: Parameters) -> Iterator[None]:
    """New hashes use ``parameters`` inside the block; the production ones again after it.

    For test suites only: ``argon2.profiles.CHEAPEST`` is still real argon2id and makes a
    sign-in cost microseconds instead of ~0.3 s. Verification reads the parameters from each
    hash, so hashes of either kind verify; a hash whose parameters differ from the ones in
    use counts as needing a rehash. Process-wide, not per thread: never for a server."""
    saved = _Hashing.hasher
    _Hashing.hasher = PasswordHasher.from_parameters(parameters)
    try:
        yield
    finally:
        _Hashing.hasher = saved


class ThrottledError(VisageError):
    """Too many failed sign-ins for this name or from this client; ``retry_after`` seconds
    until the oldest counted failure leaves the window (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TotpRequiredError(AuthError):
    """The password is right, and a one-time code is needed (none, or a wrong one, given)."""


class PasswordRuleError(InputError):
    """The new password breaks a rule (too short, the user's name)."""


class TotpCodeError(InputError):
    """The code given to confirm a new authenticator does not match its secret."""


class UserExistsError(VisageError):
    """A user of that name (compared case-insensitively) already exists (HTTP 409)."""


class LastAdminError(VisageError):
    """Disabling this account would leave no enabled admin account."""


# -- names and passwords ------------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InputError(NAME_RULE)
    return name


def check_password(name: str, password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise PasswordRuleError(f"a password has at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise PasswordRuleError(f"a password has at most {PASSWORD_MAX} characters")
    if password.strip().casefold() == name.casefold():
        raise PasswordRuleError("a password may not be the user name")


def hash_password(password: str) -> str:
    """An argon2id hash in PHC format (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``)."""
    return _Hashing.hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if len(password) > PASSWORD_MAX:
        return False
    try:
        return _Hashing.hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _Hashing.hasher.check_needs_rehash(password_hash)


def spend_hash_time(password: str) -> None:
    """As long as a verification takes: for a name that is no account, so that the
    answer's timing does not tell which names exist."""
    _Hashing.hasher.hash(password[:PASSWORD_MAX])


def new_password() -> str:
    """A random one-time password (24 characters, 144 bits)."""
    return secrets.token_urlsafe(18)


# -- accounts -----------------------------------------------------------------------


def clean_purposes(role: Role, purposes: list[str]) -> list[str]:
    """An operator account lists ≥ 1 purpose (as an operator key does); others list none."""
    clean = list(dict.fromkeys(normalise_purpose(p) for p in purposes))
    if role is Role.operator and not clean:
        raise KeyPurposeRequiredError("an operator account must list at least one purpose")
    if role is not Role.operator and clean:
        raise InputError("only an operator account lists purposes")
    return clean


def find_user(session: Session, name: str) -> UserRow | None:
    if not NAME_RE.match(name):
        return None
    return session.scalar(select(UserRow).where(func.lower(UserRow.name) == name.lower()))


def require_user(session: Session, name: str) -> UserRow:
    row = find_user(session, name)
    if row is None:
        raise NotFoundError(f"no user named {name!r}")
    return row


def create_user(
    session: Session,
    name: str,
    role: Role,
    purposes: list[str],
    password: str,
    *,
    must_change: bool = False,
) -> UserRow:
    check_name(name)
    clean = clean_purposes(role, purposes)
    check_password(name, password)
    if find_user(session, name) is not None:
        raise UserExistsError(f"a user named {name!r} already exists")
    row = UserRow(
        id=uuid.uuid4().hex,
        name=name,
        role=role.value,
        purposes=clean,
        password_hash=hash_password(password),
        totp_sealed=None,
        must_change_password=must_change,
        created_at=datetime.now(UTC),
        disabled_at=None,
    )
    session.add(row)
    session.flush()
    return row


def has_users(session: Session) -> bool:
    return session.scalar(select(UserRow.id).limit(1)) is not None


def ensure_not_last_admin(session: Session, row: UserRow) -> None:
    if row.role != Role.admin.value or row.disabled_at is not None:
        return
    others = select(UserRow.id).where(
        UserRow.role == Role.admin.value, UserRow.disabled_at.is_(None), UserRow.id != row.id
    )
    if session.scalar(others.limit(1)) is None:
        raise LastAdminError(
            f"{row.name} is the last enabled admin account; enable or add another admin first"
        )


def principal_of(row: UserRow) -> Principal:
    return Principal(
        key_id=row.name,
        role=Role(row.role),
        purposes=tuple(row.purposes),
        owner=row.name,
        kind="user",
    )


def actor_of(row: UserRow) -> Actor:
    return principal_of(row).actor


# -- sessions -----------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user: UserRow, now: datetime) -> tuple[str, str]:
    """A new session for ``user``: returns (token, csrf); only the token's digest is kept."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        WebSessionRow(
            digest=token_digest(token), user_id=user.id, csrf=csrf, created_at=now, last_seen=now
        )
    )
    session.flush()
    return token, csrf


def find_session(
    session: Session, token: str | None, idle: timedelta, now: datetime
) -> tuple[WebSessionRow, UserRow]:
    """The live session of ``token`` and its user, its ``last_seen`` moved to ``now``.
    An idle session, or one of a disabled user, is deleted and refused."""
    if not token:
        raise AuthError("sign in first")
    row = session.get(WebSessionRow, token_digest(token))
    if row is None:
        raise AuthError("this session has ended: sign in again")
    user = session.get(UserRow, row.user_id)
    if user is None or user.disabled_at is not None or now - row.last_seen > idle:
        session.delete(row)
        session.flush()
        raise AuthError("this session has ended: sign in again")
    row.last_seen = now
    return row, user


def end_session(session: Session, token: str) -> UserRow | None:
    """Deletes the session of ``token``; its user, or None when it was no live session."""
    row = session.get(WebSessionRow, token_digest(token)) if token else None
    if row is None:
        return None
    user = session.get(UserRow, row.user_id)
    session.delete(row)
    session.flush()
    return user


def end_sessions(session: Session, user_id: str, keep_token: str | None = None) -> int:
    stmt = delete(WebSessionRow).where(WebSessionRow.user_id == user_id)
    if keep_token:
        stmt = stmt.where(WebSessionRow.digest != token_digest(keep_token))
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def prune_sessions(session: Session, idle: timedelta, now: datetime) -> None:
    session.execute(delete(WebSessionRow).where(WebSessionRow.last_seen < now - idle))


# -- throttling ---------------------------------------------------------------------


def _name_key(name: str) -> str:
    """What a failure row keeps of the typed name: its SHA-256 (case folded), as what is
    typed there is sometimes a password."""
    return hashlib.sha256(name.lower().encode()).hexdigest()


def _client_key(client: str) -> str:
    return client[:64]


def retry_after(session: Session, name: str, client: str, limit: int, now: datetime) -> int | None:
    """Seconds until a sign-in for ``name`` from ``client`` is allowed again, or None when
    neither has ``limit`` failures in the window."""
    since = now - THROTTLE_WINDOW
    waits = []
    for column, value in (
        (SignInFailureRow.name, _name_key(name)),
        (SignInFailureRow.client, _client_key(client)),
    ):
        stmt = (
            select(SignInFailureRow.at)
            .where(column == value, SignInFailureRow.at > since)
            .order_by(SignInFailureRow.at.desc())
            .offset(limit - 1)
            .limit(1)
        )
        oldest_counted = session.scalar(stmt)
        if oldest_counted is not None:
            left = (oldest_counted + THROTTLE_WINDOW - now).total_seconds()
            waits.append(max(1, math.ceil(left)))
    return max(waits) if waits else None


def record_failure(session: Session, name: str, client: str, now: datetime) -> None:
    session.add(SignInFailureRow(name=_name_key(name), client=_client_key(client), at=now))
    session.flush()


def forget_failures(session: Session, name: str, now: datetime) -> None:
    """After a sign-in: the name's failures are cleared (its client's are kept, so that one
    good account cannot reset a client's count), and all failures past the window pruned."""
    session.execute(
        delete(SignInFailureRow).where(
            or_(
                SignInFailureRow.name == _name_key(name),
                SignInFailureRow.at <= now - THROTTLE_WINDOW,
            )
        )
    )


# -- TOTP ---------------------------------------------------------------------------


def check_totp_role(row: UserRow) -> None:
    if Role(row.role) not in TOTP_ROLES:
        allowed = " and ".join(sorted(r.value for r in TOTP_ROLES))
        raise InputError(f"a one-time code (TOTP) is for {allowed} accounts only")


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str | None, now: datetime | None = None) -> int | None:
    """The 30-s time step of which ``code`` is the code: the current step, or the one
    before or after (clock drift); None when it is none of them."""
    if not code:
        return None
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    at = now or datetime.now(UTC)
    try:
        totp = pyotp.TOTP(secret)
        for drift in (0, -1, 1):
            when = at + timedelta(seconds=drift * totp.interval)
            if secrets.compare_digest(totp.at(when), code):
                return int(totp.timecode(when))
    except Exception:  # a malformed secret never signs anyone in
        return None
    return None


def spend_totp_step(session: Session, user_id: str, step: int) -> bool:
    """Records ``step`` as the user's last accepted code; False when a code of this step or
    a later one was already accepted (a replay). One conditional UPDATE, so that of two
    sign-ins racing with the same code, one wins."""
    claimed = session.execute(
        update(UserRow)
        .where(UserRow.id == user_id)
        .where(or_(UserRow.totp_last_step.is_(None), UserRow.totp_last_step < step))
        .values(totp_last_step=step)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _totp_aad(user_id: str) -> bytes:
    return f"user-totp:{user_id}".encode()


def seal_totp(master: bytes, user_id: str, secret: str) -> bytes:
    return crypto.seal(derive_key(master, TOTP_KEY_LABEL), secret.encode(), _totp_aad(user_id))


def open_totp(master: bytes, user_id: str, sealed: bytes) -> str:
    key = derive_key(master, TOTP_KEY_LABEL)
    return crypto.open_sealed(key, sealed, _totp_aad(user_id)).decode()
