"""The state of the installation at a glance: what every door shows as its overview.

The deployment profile and the gates it implies, a few counts, the audit chain's state and
the halts in place. Everything is cheap to compute (counts and the newest rows, no
decryption, no chain verification: that is the Audit page's "Verify now"), so the page can
be loaded at any time. Event counts follow the events rule: an operator counts only the
events of its purposes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.governance import audit
from visage.governance.access import ForbiddenError, Principal
from visage.governance.profile import DeploymentProfile
from visage.governance.review import Status as ReviewStatus
from visage.store.schema import (
    AuditEntryRow,
    ConsentRow,
    EventRow,
    ReviewRow,
    SubjectRow,
    TemplateRow,
)
from visage.usecases import cameras as cameras_uc
from visage.usecases.events import visible_purposes
from visage.usecases.halt import HaltOut, list_halts
from visage.usecases.profile import get_profile

UP = frozenset({cameras_uc.CameraState.running, cameras_uc.CameraState.starting})


class Gates(BaseModel):
    identify: str | None = Field(description="why 1:N on images is refused; None: allowed")
    live: str | None = Field(description="why 1:N on cameras is refused; None: allowed")
    post_remote_only: bool = Field(
        description="every 1:N search needs the reference of its authorisation"
    )


class Counts(BaseModel):
    subjects: int
    templates: int
    events_24h: int | None = Field(
        description="events that started in the last 24 hours (None: the viewer may not "
        "read events)"
    )
    pending_reviews: int
    cameras_up: int = Field(description="enabled cameras whose worker is running")
    cameras_down: int = Field(description="enabled cameras not running (error, halt, …)")
    cameras_disabled: int


class ChainState(BaseModel):
    entries: int = Field(description="entries in the chain (after any purge)")
    head_seq: int | None = Field(description="sequence number of the newest entry")
    head_hash: str | None
    checkpoint_seq: int | None = Field(description="the newest signed checkpoint")
    checkpoint_at: datetime | None
    unsigned: int = Field(description="entries after the newest signed checkpoint")


class Overview(BaseModel):
    profile: DeploymentProfile
    gates: Gates
    counts: Counts
    audit: ChainState
    halts: list[HaltOut]
    cameras: list[str] = Field(description="camera names (what a camera halt can name)")
    purposes: list[str] = Field(
        description="purposes in use (consents, cameras, watchlists) that the viewer may see"
    )
    at: datetime


def overview(core: Visage, viewer: Principal | None = None) -> Overview:
    """The overview as ``viewer`` may see it (None: the local user)."""
    profile = get_profile(core)
    gates = Gates(
        identify=profile.identification_refusal(),
        live=profile.identification_refusal(live=True),
        post_remote_only=profile.post_remote_only,
    )
    try:
        purposes = visible_purposes(viewer)
        may_see_events = True
    except ForbiddenError:  # enrollers and reviewers read no events, nor their count
        purposes, may_see_events = frozenset(), False
    now = datetime.now(UTC)
    cams = cameras_uc.list_cameras(core)
    enabled = [c for c in cams if c.enabled]
    up = sum(1 for c in enabled if c.status.state in UP)
    with core.store.session() as session:
        events_stmt = select(func.count()).select_from(EventRow)
        events_stmt = events_stmt.where(EventRow.started_at >= now - timedelta(hours=24))
        if purposes is not None:
            events_stmt = events_stmt.where(EventRow.purpose.in_(sorted(purposes)))
        counts = Counts(
            subjects=_count(session, select(func.count()).select_from(SubjectRow)),
            templates=_count(session, select(func.count()).select_from(TemplateRow)),
            events_24h=_count(session, events_stmt) if may_see_events else None,
            pending_reviews=_count(
                session,
                select(func.count())
                .select_from(ReviewRow)
                .where(ReviewRow.status == ReviewStatus.pending.value),
            ),
            cameras_up=up,
            cameras_down=len(enabled) - up,
            cameras_disabled=len(cams) - len(enabled),
        )
        head = session.execute(
            select(AuditEntryRow.seq, AuditEntryRow.hash)
            .order_by(AuditEntryRow.seq.desc())
            .limit(1)
        ).first()
        entries = _count(session, select(func.count()).select_from(AuditEntryRow))
        cp = audit.newest_checkpoint(session)
        in_use = {p for row in session.scalars(select(ConsentRow.purposes)) for p in row}
    in_use |= {c.purpose for c in cams} | set(profile.watchlist_purposes)
    if purposes is not None:
        in_use &= purposes
    head_seq = None if head is None else int(head[0])
    chain = ChainState(
        entries=entries,
        head_seq=head_seq,
        head_hash=None if head is None else str(head[1]),
        checkpoint_seq=None if cp is None else cp.seq,
        checkpoint_at=None if cp is None else cp.at,
        unsigned=(head_seq or 0) - (cp.seq if cp is not None else 0) if head_seq else 0,
    )
    return Overview(
        profile=profile,
        gates=gates,
        counts=counts,
        audit=chain,
        halts=list_halts(core),
        cameras=[c.name for c in cams],
        purposes=sorted(in_use),
        at=now,
    )


def _count(session: Session, stmt: Select[int]) -> int:
    return int(session.scalar(stmt) or 0)
