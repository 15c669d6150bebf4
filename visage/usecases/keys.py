"""API keys: create (shown once), list, revoke, and the first admin key of a server."""

from __future__ import annotations

from visage.app import Visage
from visage.governance import access
from visage.governance.access import KeyCreated, KeyInfo, Principal, Role
from visage.governance.audit import Actor
from visage.governance.audit_ops import KeyCreateAudit, KeyRevokeAudit


def create_key(
    app: Visage,
    role: Role,
    purposes: list[str],
    name: str = "",
    actor: Actor | None = None,
    *,
    owner: str = "",
) -> KeyCreated:
    with app.store.session() as session:
        created = access.create_key(session, role, purposes, name, owner)
        app.audit(
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


def list_keys(app: Visage) -> list[KeyInfo]:
    with app.store.session() as session:
        return access.list_keys(session)


def revoke_key(app: Visage, key_id: str, actor: Actor | None = None) -> KeyInfo:
    with app.store.session() as session:
        info = access.revoke_key(session, key_id)
        app.audit(session, actor or Actor.local(), KeyRevokeAudit(key_id=key_id))
        return info


def authenticate(app: Visage, token: str | None) -> Principal:
    with app.store.session() as session:
        return access.authenticate(session, token)


def bootstrap_admin(app: Visage) -> KeyCreated | None:
    """A first admin key when none exists (printed once by ``visage serve``)."""
    with app.store.session() as session:
        if access.has_keys(session, Role.admin):
            return None
        created = access.create_key(session, Role.admin, [], name="first admin (created at start)")
        app.audit(session, Actor.system(), KeyCreateAudit(key_id=created.id, key_role=Role.admin))
        return created
