"""API keys: create (shown once), list, revoke, and the first admin key of a server."""

from __future__ import annotations

from visage.app import Visage
from visage.governance import access
from visage.governance.access import KeyCreated, KeyInfo, Principal, Role


def create_key(app: Visage, role: Role, purposes: list[str], name: str = "") -> KeyCreated:
    with app.store.session() as session:
        return access.create_key(session, role, purposes, name)


def list_keys(app: Visage) -> list[KeyInfo]:
    with app.store.session() as session:
        return access.list_keys(session)


def revoke_key(app: Visage, key_id: str) -> KeyInfo:
    with app.store.session() as session:
        return access.revoke_key(session, key_id)


def authenticate(app: Visage, token: str | None) -> Principal:
    with app.store.session() as session:
        return access.authenticate(session, token)


def bootstrap_admin(app: Visage) -> KeyCreated | None:
    """A first admin key when none exists (printed once by ``visage serve``)."""
    with app.store.session() as session:
        if access.has_keys(session, Role.admin):
            return None
        return access.create_key(session, Role.admin, [], name="first admin (created at start)")
