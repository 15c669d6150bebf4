"""Read match events (enrolled subjects recognised by identify calls or cameras)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from visage.app import Visage
from visage.governance.events import list_events


class EventOut(BaseModel):
    id: str
    subject_id: str
    purpose: str
    source: str
    camera: str | None
    started_at: datetime
    ended_at: datetime
    best_score: float
    frames: int
    review_id: str | None


def events(
    app: Visage,
    *,
    subject_id: str | None = None,
    camera: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[EventOut]:
    with app.store.session() as session:
        rows = list_events(session, subject_id=subject_id, camera=camera, since=since, limit=limit)
        return [EventOut.model_validate(r, from_attributes=True) for r in rows]
