"""Match events: an enrolled subject recognised for a purpose (by an identify call or on a
camera). Only enrolled matches ever become events; a bystander leaves no row.

A camera event is recorded when its track is first recognised and updated while the track
lasts (see :mod:`visage.usecases.track_events`); an identify call's event is one row."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from visage.store.schema import EventRow


def record_event(
    session: Session,
    *,
    subject_id: str,
    purpose: str,
    source: str,
    best_score: float,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    frames: int = 1,
    camera: str | None = None,
    review_id: str | None = None,
    media_start_s: float | None = None,
    media_end_s: float | None = None,
) -> EventRow:
    now = datetime.now(UTC)
    row = EventRow(
        id=uuid.uuid4().hex,
        subject_id=subject_id,
        purpose=purpose,
        source=source,
        camera=camera,
        started_at=started_at or now,
        ended_at=ended_at or started_at or now,
        best_score=best_score,
        frames=frames,
        review_id=review_id,
        media_start_s=media_start_s,
        media_end_s=media_end_s,
    )
    session.add(row)
    session.flush()
    return row


def update_event(
    session: Session,
    event_id: str,
    *,
    ended_at: datetime,
    frames: int,
    best_score: float,
    media_end_s: float | None = None,
) -> bool:
    """A camera event's track went on: its end, frame count and best score so far. Returns
    False when the row is gone (its subject was erased meanwhile). SQLAlchemy writes only the
    columns whose value changed, and nothing when none did."""
    row = session.get(EventRow, event_id)
    if row is None:
        return False
    row.ended_at, row.frames, row.best_score = ended_at, frames, best_score
    if media_end_s is not None:
        row.media_end_s = media_end_s
    session.flush()
    return True


def list_events(
    session: Session,
    *,
    subject_id: str | None = None,
    camera: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    purposes: Collection[str] | None = None,
    purpose: str | None = None,
    until: datetime | None = None,
    offset: int = 0,
) -> list[EventRow]:
    """Events newest first. ``purposes``: only events of these purposes (None: all);
    ``purpose``: of this one; ``since``/``until``: started in ``[since, until)``."""
    stmt = select(EventRow).order_by(EventRow.started_at.desc(), EventRow.id)
    stmt = stmt.offset(offset).limit(limit)
    if purpose is not None:
        stmt = stmt.where(EventRow.purpose == purpose)
    if until is not None:
        stmt = stmt.where(EventRow.started_at < until)
    if purposes is not None:
        stmt = stmt.where(EventRow.purpose.in_(list(purposes)))
    if subject_id is not None:
        stmt = stmt.where(EventRow.subject_id == subject_id)
    if camera is not None:
        stmt = stmt.where(EventRow.camera == camera)
    if since is not None:
        stmt = stmt.where(EventRow.started_at >= since)
    return list(session.scalars(stmt))


def purge_events(session: Session, cutoff: datetime) -> int:
    result = session.execute(delete(EventRow).where(EventRow.started_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
