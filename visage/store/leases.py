"""Camera leases: each camera is watched by exactly one process (replica) at a time.

A lease (``camera_leases``: camera, holder, expiry) is taken and renewed by the holder's
heartbeat (:data:`HEARTBEAT_S`); it lapses :data:`LEASE_TTL_S` after the last renewal, so a
replica that dies (``kill -9``) loses its cameras to another within about
``LEASE_TTL_S + HEARTBEAT_S`` seconds. On PostgreSQL, :func:`claim` takes the rows with
``SELECT … FOR UPDATE SKIP LOCKED`` (replicas claiming at once never wait on, or take, each
other's rows); on SQLite the one process holds every lease through the same code.

Time is the database's clock on PostgreSQL, so that replicas on machines whose clocks
disagree still agree on when a lease lapses.

A lost lease must stop the old holder *before* it writes: :func:`check` runs inside the
transaction of every event a camera writes, and on PostgreSQL it locks the lease row
(``FOR SHARE``) so that a takeover waits for that write to commit, and every later check of
the old holder fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session

from visage.errors import VisageError
from visage.store.db import Store
from visage.store.schema import CameraLeaseRow

LEASE_TTL_S = 10.0
HEARTBEAT_S = 3.0
_FREE = ""
"""The holder of a lease nobody holds (released, or never taken)."""


class LeaseLostError(VisageError):
    """This process no longer holds the camera's lease: another replica watches it."""


def new_holder() -> str:
    """A name for this process's leases: host, pid and a random part (a restarted process
    with a recycled pid is a new holder)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def db_now(session: Session) -> datetime:
    """Now, by the database's clock on PostgreSQL (aware, UTC); the local clock on SQLite
    (one machine)."""
    if session.get_bind().dialect.name == "postgresql":
        found = session.execute(text("SELECT clock_timestamp() AT TIME ZONE 'UTC'")).scalar_one()
        return found.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return datetime.now(UTC)


def claim(
    session: Session, holder: str, camera_ids: Collection[str], ttl_s: float = LEASE_TTL_S
) -> set[str]:
    """Renew ``holder``'s leases among ``camera_ids`` and take those free or lapsed; returns
    the cameras ``holder`` now holds (until ``ttl_s`` from now). A row another transaction
    holds locked is skipped: it is being renewed or checked by its holder."""
    if not camera_ids:
        return set()
    now = db_now(session)
    lapsed = now - timedelta(seconds=1)
    table = CameraLeaseRow.__table__
    for camera_id in camera_ids:
        session.execute(
            Store.insert_new(session, table).values(
                camera_id=camera_id, holder=_FREE, expires_at=lapsed
            )
        )
    rows = session.scalars(
        select(CameraLeaseRow)
        .where(
            CameraLeaseRow.camera_id.in_(list(camera_ids)),
            or_(CameraLeaseRow.holder == holder, CameraLeaseRow.expires_at <= now),
        )
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    until = now + timedelta(seconds=ttl_s)
    for row in rows:
        row.holder, row.expires_at = holder, until
    return {row.camera_id for row in rows}


def release(session: Session, holder: str, camera_ids: Collection[str] | None = None) -> None:
    """Give up ``holder``'s leases (all, or those of ``camera_ids``): another replica may
    take them at its next heartbeat instead of waiting for them to lapse."""
    stmt = update(CameraLeaseRow).where(CameraLeaseRow.holder == holder)
    if camera_ids is not None:
        stmt = stmt.where(CameraLeaseRow.camera_id.in_(list(camera_ids)))
    past = db_now(session) - timedelta(seconds=1)
    session.execute(stmt.values(holder=_FREE, expires_at=past))


def check(session: Session, holder: str, camera_id: str) -> None:
    """Inside the transaction of a camera's write: raise :class:`LeaseLostError` unless
    ``holder`` still holds the camera's lease (the row stays locked until commit)."""
    row = session.scalars(
        select(CameraLeaseRow)
        .where(CameraLeaseRow.camera_id == camera_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None or row.holder != holder or row.expires_at <= db_now(session):
        raise LeaseLostError("this server no longer holds the camera's lease")


def holders(session: Session) -> dict[str, str]:
    """Camera id → holder of every lease in force (for statuses)."""
    now = db_now(session)
    rows = session.execute(
        select(CameraLeaseRow.camera_id, CameraLeaseRow.holder).where(
            CameraLeaseRow.expires_at > now, CameraLeaseRow.holder != _FREE
        )
    )
    return {camera_id: holder for camera_id, holder in rows}
