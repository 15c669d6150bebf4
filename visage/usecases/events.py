"""Read match events (enrolled subjects recognised by identify calls or cameras).

Events say who was seen where, so they are purpose-bound: an operator key sees only the
events of the purposes it holds, auditors and admins see all, other roles none. The rule is
applied here, in the query, so that every door gets it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from visage.core import Visage
from visage.governance.access import ForbiddenError, Principal, Role
from visage.governance.consent import normalise_purpose
from visage.governance.events import list_events

SEE_ALL = frozenset({Role.auditor, Role.admin})


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
    media_start_s: float | None = Field(
        default=None, description="position in the clip (s from its start) when watching a file"
    )
    media_end_s: float | None = None


def visible_purposes(viewer: Principal | None) -> frozenset[str] | None:
    """The purposes whose events ``viewer`` may read; None for all (a local user, an
    auditor, an admin). Other roles than operator may read none."""
    if viewer is None or viewer.role in SEE_ALL:
        return None
    if viewer.role is Role.operator:
        return frozenset(viewer.purposes)
    raise ForbiddenError(f"role {viewer.role.value} may not read events")


def events(
    core: Visage,
    *,
    viewer: Principal | None = None,
    subject_id: str | None = None,
    camera: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    purpose: str | None = None,
    until: datetime | None = None,
    offset: int = 0,
) -> list[EventOut]:
    """Events newest first, limited to what ``viewer`` may see (None: the local user).
    Asking an operator's events for a purpose it does not hold is :class:`ForbiddenError`."""
    purposes = visible_purposes(viewer)
    if purpose is not None:
        purpose = normalise_purpose(purpose)
        if purposes is not None and purpose not in purposes:
            raise ForbiddenError(f"the events of purpose '{purpose}' are not yours to read")
    with core.store.session() as session:
        rows = list_events(
            session,
            subject_id=subject_id,
            camera=camera,
            since=since,
            limit=limit,
            purposes=purposes,
            purpose=purpose,
            until=until,
            offset=offset,
        )
        return [EventOut.model_validate(r, from_attributes=True) for r in rows]
