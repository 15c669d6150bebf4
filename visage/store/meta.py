"""Small named values in the ``meta`` table (profile, counters, last evaluation)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from visage.store.schema import Meta


def get_meta(session: Session, key: str) -> bytes | None:
    row = session.get(Meta, key)
    return None if row is None else row.value


def put_meta(session: Session, key: str, value: bytes) -> None:
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value
