"""API keys and the one access policy every door applies. A key is shown once; only its
SHA-256 is stored.

Roles (least privilege, one per key):

* ``admin`` — keys, the deployment profile, retention, cameras;
* ``enroller`` — subjects, consent records, templates;
* ``operator`` — identify, verify, detect, for the purposes the key lists;
* ``reviewer`` — the two-person review queue;
* ``auditor`` — read-only audit and reports.

:data:`POLICY` says which role may use which use-case; :func:`authorize` and
:func:`require_purpose` are what the API's dependencies, the CLI and the web console call,
so that a rule changes in one place for every door.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from visage.errors import NotFoundError, VisageError
from visage.governance.audit import Actor
from visage.governance.consent import normalise_purpose
from visage.governance.roles import Role as Role  # its own module: see there
from visage.store.schema import ApiKeyRow

TOKEN_PREFIX = "vsg_"
OWNER_MAX = 200


class UseCase(StrEnum):
    """What a caller asks to do, at the grain the policy decides on."""

    keys = "keys"  # create, list, revoke API keys
    profile = "profile"  # read and change the deployment profile
    subjects = "subjects"  # subjects, consent records, templates, export, erasure
    recognise = "recognise"  # identify, verify, detect (bound to the key's purposes)
    review = "review"  # the two-person review queue
    review_outcome = "review-outcome"  # the released identity (the use-case checks who)
    audit = "audit"  # audit log, certificates, reports, review history
    retention = "retention"  # purge now
    cameras = "cameras"
    events = "events"  # match events (an operator sees only its purposes)
    metrics = "metrics"
    users = "users"  # console user accounts
    halt = "halt"  # stop and resume 1:N processing (AI Act Art. 14(4)(e))
    overview = "overview"  # the console's overview page: profile, gates, counts, halts
    references = "references"  # a subject's sealed reference face crops (enrol and review)


POLICY: dict[UseCase, frozenset[Role]] = {
    UseCase.keys: frozenset({Role.admin}),
    UseCase.profile: frozenset({Role.admin}),
    UseCase.subjects: frozenset({Role.enroller}),
    UseCase.recognise: frozenset({Role.operator}),
    UseCase.review: frozenset({Role.reviewer}),
    UseCase.review_outcome: frozenset(Role),
    UseCase.audit: frozenset({Role.auditor, Role.admin}),
    UseCase.retention: frozenset({Role.admin}),
    UseCase.cameras: frozenset({Role.admin}),
    UseCase.events: frozenset({Role.operator, Role.auditor, Role.admin}),
    UseCase.metrics: frozenset({Role.auditor, Role.admin}),
    UseCase.users: frozenset({Role.admin}),
    UseCase.halt: frozenset({Role.admin}),
    UseCase.overview: frozenset(Role),
    UseCase.references: frozenset({Role.enroller, Role.reviewer}),
}
"""Which roles may use which use-case: the one table every door checks against."""


class AuthError(VisageError):
    """Missing, unknown or revoked credentials (HTTP 401)."""


class ForbiddenError(VisageError):
    """Valid credentials without the right role or purpose (HTTP 403)."""


class KeyPurposeRequiredError(VisageError):
    """An operator key was asked for without any purpose."""


class KeyOwnerRequiredError(VisageError):
    """A reviewer key was asked for without naming the person it belongs to."""


class ReviewerWithoutOwnerError(ForbiddenError):
    """A reviewer key that names no owner (made before owners were required) tried to
    review: two confirmations cannot be shown to come from two people."""


class Principal(BaseModel):
    """Who is calling: what the API's dependencies check roles and purposes against.
    ``owner`` is the named person the key belongs to ("" for an older key without one).
    A console user (``kind="user"``) has its name as both ``key_id`` and ``owner``, so that
    a user and a key owned by the same name count as one person in two-person review."""

    key_id: str
    role: Role
    purposes: tuple[str, ...]
    owner: str = ""
    kind: Literal["key", "user"] = "key"

    @property
    def actor(self) -> Actor:
        return Actor(f"{self.kind}:{self.key_id}", self.role.value)


def require_role(principal: Principal, *roles: Role) -> Principal:
    """``principal`` if its role is one of ``roles``, else :class:`ForbiddenError`."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in Role if r in roles)
        raise ForbiddenError(f"role {principal.role.value} may not do this (needs {allowed})")
    return principal


def authorize(principal: Principal, use_case: UseCase) -> Principal:
    """``principal`` if :data:`POLICY` lets its role use ``use_case``."""
    return require_role(principal, *POLICY[use_case])


def require_purpose(principal: Principal, purpose: str) -> str:
    """The normalised ``purpose`` if the key lists it, else :class:`ForbiddenError`."""
    p = normalise_purpose(purpose)
    if p not in principal.purposes:
        raise ForbiddenError(f"this key may not be used for purpose '{p}'")
    return p


class KeyCreated(BaseModel):
    id: str
    key: str
    role: Role
    purposes: list[str]
    owner: str


class KeyInfo(BaseModel):
    id: str
    name: str
    owner: str
    role: Role
    purposes: list[str]
    created_at: datetime
    revoked_at: datetime | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _clean_owner(owner: str) -> str:
    clean = " ".join(owner.split())
    if len(clean) > OWNER_MAX:
        raise VisageError(f"an owner name has at most {OWNER_MAX} characters")
    return clean


def create_key(
    session: Session, role: Role, purposes: list[str], name: str = "", owner: str = ""
) -> KeyCreated:
    """A new key. A reviewer key must name its owner: the two confirmations of a review
    must come from two different people, which only a named owner makes checkable."""
    if role is Role.operator and not purposes:
        raise KeyPurposeRequiredError("an operator key must list at least one purpose")
    owner = _clean_owner(owner)
    if role is Role.reviewer and not owner:
        raise KeyOwnerRequiredError("a reviewer key must name the person it belongs to")
    clean = list(dict.fromkeys(normalise_purpose(p) for p in purposes))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=uuid.uuid4().hex,
        name=name,
        owner=owner,
        digest=_digest(token),
        role=role.value,
        purposes=clean,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return KeyCreated(id=row.id, key=token, role=role, purposes=clean, owner=owner)


def _info(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        owner=row.owner,
        role=Role(row.role),
        purposes=list(row.purposes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def list_keys(session: Session) -> list[KeyInfo]:
    return [_info(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))]


def revoke_key(session: Session, key_id: str) -> KeyInfo:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFoundError(f"no key with id {key_id}")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return _info(row)


def authenticate(session: Session, token: str | None) -> Principal:
    if not token:
        raise AuthError("an API key is required (Authorization: Bearer … or X-API-Key)")
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.digest == _digest(token)))
    if row is None or row.revoked_at is not None:
        raise AuthError("unknown or revoked API key")
    return Principal(
        key_id=row.id, role=Role(row.role), purposes=tuple(row.purposes), owner=row.owner
    )


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two owner names name one person: compared as console user names are
    (case-insensitively), after Unicode NFKC and with runs of white space as one space.
    A key owned by "alice" and the console user "Alice" are one person, so they are one
    reviewer, and "Carol " may not review a search "carol" asked for."""
    if not a or not b:
        return False
    return _person_key(a) == _person_key(b)


def _person_key(owner: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", owner).casefold().split())


def owner_of(session: Session, actor_id: str) -> str:
    """The person behind an actor id: a key's owner (``key:<id>`` when the key names none),
    a console user's name (``user:<name>``), the OS user of a local actor
    (``local:<user>``), else the actor id itself."""
    kind, _, ident = actor_id.partition(":")
    if kind == "key":
        owner = session.scalar(select(ApiKeyRow.owner).where(ApiKeyRow.id == ident))
        return owner or actor_id
    if kind in ("user", "local"):
        return ident
    return actor_id


def has_keys(session: Session, role: Role) -> bool:
    stmt = select(ApiKeyRow.id).where(ApiKeyRow.role == role.value, ApiKeyRow.revoked_at.is_(None))
    return session.scalar(stmt.limit(1)) is not None
