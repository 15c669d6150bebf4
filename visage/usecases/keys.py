"""API keys: create (shown once), list, revoke, and the first admin key of a server."""

from __future__ import annotations

from pydantic import BaseModel, Field

from visage.core import Visage
from visage.governance import access
from visage.governance.access import KeyCreated, KeyInfo, Principal, Role
from visage.governance.audit import Actor
from visage.governance.audit_ops import KeyCreateAudit, KeyRevokeAudit


class NewKey(BaseModel):
    """What a new API key is for: the input of :func:`create_key` in every door."""

    role: Role = Field(description="admin, enroller, operator, reviewer or auditor.")
    purposes: list[str] = Field(
        default_factory=list,
        description="Purposes the key may use (an operator key needs at least one).",
        examples=[["access-control"]],
    )
    name: str = Field(default="", max_length=200, description="A label to recognise the key by.")
    owner: str = Field(
        default="",
        max_length=200,
        description="The person the key belongs to; required for reviewer keys (two "
        "confirmations must come from two different owners).",
        examples=["Ada Lovelace"],
    )


def create_key(
    core: Visage,
    role: Role,
    purposes: list[str],
    name: str = "",
    actor: Actor | None = None,
    *,
    owner: str = "",
) -> KeyCreated:
    with core.store.session() as session:
        created = access.create_key(session, role, purposes, name, owner)
        core.audit(
            session,
            actor or Actor.local(),
            KeyCreateAudit(
                key_id=created.id,
                key_role=role,
                purposes=created.purposes,
                owner=created.owner,
            ),
        )
        return created


def list_keys(core: Visage) -> list[KeyInfo]:
    with core.store.session() as session:
        return access.list_keys(session)


def revoke_key(core: Visage, key_id: str, actor: Actor | None = None) -> KeyInfo:
    with core.store.session() as session:
        info = access.revoke_key(session, key_id)
        core.audit(session, actor or Actor.local(), KeyRevokeAudit(key_id=key_id))
        return info


def authenticate(core: Visage, token: str | None) -> Principal:
    with core.store.session() as session:
        return access.authenticate(session, token)


def bootstrap_admin(core: Visage) -> KeyCreated | None:
    """A first admin key when none exists (printed once by ``visage serve``)."""
    with core.store.session() as session:
        if access.has_keys(session, Role.admin):
            return None
        created = access.create_key(session, Role.admin, [], name="first admin (created at start)")
        core.audit(session, Actor.system(), KeyCreateAudit(key_id=created.id, key_role=Role.admin))
        return created
