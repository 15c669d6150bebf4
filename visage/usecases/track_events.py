"""The life of a recognised track on a camera: ``start``, ``update`` and ``end`` (Frigate's shape).

Someone standing at a door is an event as soon as their track is first recognised, not when
they leave: the event row is written at ``start`` and the ``event.start`` message goes to the
webhooks and MQTT at once. While the track lasts, the row is written again (and
``event.update`` sent) only when something meaningful changed — a better score, or
``update_every_s`` of presence since the row was last written — never on every frame. At
``end`` the row gets its final end time, frame count and best score, and ``event.end`` is sent.
Messages carry ids (event, subject, camera), never names or images.

For a watchlist purpose nothing is announced and no event exists: the track becomes one
review item when it ends, blind until two reviewers confirm it (:mod:`visage.governance.review`).

A subject erased while on camera leaves no event: the insert or the update fails or finds no
row, the track is dropped and nothing more is sent about it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.governance import review as review_gov
from visage.governance.access import owner_of
from visage.governance.audit import Actor
from visage.governance.events import record_event, update_event
from visage.media.tracking import Track
from visage.store.keyring import KeyDestroyedError

FrameTime = Callable[[int], datetime]
"""The wall-clock time of a frame index of the current opening of the source."""

MediaTime = Callable[[int], float]
"""The position of a frame index in a file (seconds from its start)."""

SCORE_STEP = 0.001
"""A score better by at least this much is a meaningful change (the row keeps 4 decimals)."""


class EventPhase(StrEnum):
    """Where a recognised track is in its life; ``event.<phase>`` is the message kind."""

    start = "start"
    update = "update"
    end = "end"

    @property
    def kind(self) -> str:
        return f"event.{self.value}"


class WatchEvent(BaseModel):
    event_id: str | None = Field(
        default=None, description="the stored event's id; None for a watchlist purpose"
    )
    camera: str
    subject_id: str | None = Field(
        description="None for a watchlist purpose: withheld until two reviewers confirm"
    )
    purpose: str
    started_at: datetime
    ended_at: datetime
    best_score: float | None = Field(description="None for a watchlist purpose")
    frames: int = Field(description="frames on which the track's face was detected")
    review_id: str | None = Field(default=None, description="set for a watchlist purpose")
    media_start_s: float | None = Field(
        default=None,
        description="position of the first frame in the clip (seconds from its start) when "
        "watching a file; None for a live source",
    )
    media_end_s: float | None = Field(default=None, description="the last frame's position")


@dataclass(frozen=True)
class BestMatch:
    """The best match seen on a track; the face crop is kept only for watchlist review."""

    score: float
    quality: float = 0.0
    probe: bytes | None = None


class TrackEvents:
    """Turns the tracks of one watch run into events (see the module docstring)."""

    def __init__(
        self,
        core: Visage,
        purpose: str,
        camera: str,
        actor: Actor,
        *,
        watchlist: bool,
        update_every_s: float = 5.0,
        guard: Callable[[Session], None] | None = None,
    ) -> None:
        self.core, self.purpose, self.camera, self.actor = core, purpose, camera, actor
        self.watchlist, self.update_every = watchlist, timedelta(seconds=update_every_s)
        self.guard = guard
        """Checked in each write's transaction (a camera's lease); raises to refuse it."""
        self.ended: list[WatchEvent] = []
        """Events of tracks that ended (what the run reports)."""
        self._open: dict[int, WatchEvent] = {}
        self._dropped: set[int] = set()
        self.media_time: MediaTime | None = None
        """Set by the run while it reads a file (not a live source)."""

    def _media(self, frame: int) -> float | None:
        return None if self.media_time is None else round(self.media_time(frame), 3)

    def observe(self, tracks: Iterable[Track], frame_time: FrameTime) -> None:
        """After each frame: start the tracks recognised on it, update the others that
        changed meaningfully."""
        if self.watchlist:
            return  # nothing exists before review
        for track in tracks:
            if track.label is None or track.id in self._dropped:
                continue
            event = self._open.get(track.id)
            if event is None:
                self._start(track, frame_time)
            elif self._meaningful(event, track, frame_time):
                self._write(track.id, event, track, frame_time, track.best_score, EventPhase.update)

    def end(self, track: Track, frame_time: FrameTime, best: BestMatch | None = None) -> None:
        """The track left (or the source ended): final row, ``event.end``; for a watchlist
        purpose, a review item."""
        if track.label is None:
            return
        if track.id in self._dropped:
            self._dropped.discard(track.id)
            return
        score = max(best.score if best else 0.0, track.best_score)
        if self.watchlist:
            self._review(track, frame_time, score, best or BestMatch(score))
            return
        event = self._open.get(track.id) or self._start(track, frame_time)
        if event is None:
            return
        if self._write(track.id, event, track, frame_time, score, EventPhase.end):
            self.ended.append(event)
        self._open.pop(track.id, None)

    # -- the three phases -----------------------------------------------------------------

    def _start(self, track: Track, frame_time: FrameTime) -> WatchEvent | None:
        assert track.label is not None
        event = WatchEvent(
            camera=self.camera,
            subject_id=track.label,
            purpose=self.purpose,
            started_at=frame_time(track.first_frame),
            ended_at=frame_time(track.last_seen),
            best_score=round(track.best_score, 4),
            frames=track.hits,
            media_start_s=self._media(track.first_frame),
            media_end_s=self._media(track.last_seen),
        )
        try:
            with self.core.store.session() as session:
                self._guard(session)
                row = record_event(
                    session,
                    subject_id=track.label,
                    purpose=self.purpose,
                    source="camera",
                    camera=self.camera,
                    best_score=round(track.best_score, 4),
                    started_at=event.started_at,
                    ended_at=event.ended_at,
                    frames=event.frames,
                    media_start_s=event.media_start_s,
                    media_end_s=event.media_end_s,
                )
                event.event_id = row.id
        except (KeyDestroyedError, IntegrityError):
            self._dropped.add(track.id)  # erased while on camera: no event about them
            return None
        self._open[track.id] = event
        self._send(EventPhase.start, event)
        return event

    def _meaningful(self, event: WatchEvent, track: Track, frame_time: FrameTime) -> bool:
        better = track.best_score - (event.best_score or 0.0) >= SCORE_STEP
        return better or frame_time(track.last_seen) - event.ended_at >= self.update_every

    def _write(
        self,
        track_id: int,
        event: WatchEvent,
        track: Track,
        frame_time: FrameTime,
        score: float,
        phase: EventPhase,
    ) -> bool:
        assert event.event_id is not None
        event.ended_at = frame_time(track.last_seen)
        event.frames = track.hits
        event.media_end_s = self._media(track.last_seen)
        event.best_score = round(max(score, event.best_score or 0.0), 4)
        with self.core.store.session() as session:
            self._guard(session)
            found = update_event(
                session,
                event.event_id,
                ended_at=event.ended_at,
                frames=event.frames,
                best_score=event.best_score,
                media_end_s=event.media_end_s,
            )
        if not found:  # erased while on camera: the row went with the subject
            self._open.pop(track_id, None)
            self._dropped.add(track_id)
            return False
        self._send(phase, event)
        return True

    def _guard(self, session: Session) -> None:
        if self.guard is not None:
            self.guard(session)

    def _send(self, phase: EventPhase, event: WatchEvent) -> None:
        self.core.notifier.send(phase.kind, event.model_dump(mode="json"))

    def _review(self, track: Track, frame_time: FrameTime, score: float, best: BestMatch) -> None:
        assert track.label is not None
        score = round(score, 4)
        try:
            with self.core.store.session() as session:
                self._guard(session)
                item = review_gov.open_review(
                    session,
                    self.core.keyring,
                    review_gov.Candidate(
                        subject_id=track.label,
                        purpose=self.purpose,
                        score=score,
                        threshold=self.core.threshold,
                        quality=round(best.quality, 3),
                        source="camera",
                        camera=self.camera,
                        requested_by=self.actor.id,
                        requester_owner=owner_of(session, self.actor.id),
                    ),
                    best.probe,
                )
        except (KeyDestroyedError, IntegrityError):
            return  # the subject was erased while on camera: nothing about them
        # Blind until released: the report keeps only the review id.
        self.ended.append(
            WatchEvent(
                camera=self.camera,
                subject_id=None,
                purpose=self.purpose,
                started_at=frame_time(track.first_frame),
                ended_at=frame_time(track.last_seen),
                best_score=None,
                frames=track.hits,
                review_id=item.id,
                media_start_s=self._media(track.first_frame),
                media_end_s=self._media(track.last_seen),
            )
        )
