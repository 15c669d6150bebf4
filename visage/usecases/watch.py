"""Watch a video file, a network stream (HTTP, RTSP) or a webcam for enrolled people.

Each frame is decoded, faces are detected and tracked (as in anonymisation); a track's face is
embedded on a few frames, keeping the best, and identified against the subjects whose valid
consent covers the purpose. Only a track recognised as such a subject becomes an event
(camera, start, end, subject id, best score, track length): recorded and announced when the
track is first recognised, updated while it lasts, closed when it ends
(:mod:`visage.usecases.track_events`); for a watchlist purpose it becomes a review item
instead. A bystander's embedding exists only inside one call of the recogniser and is never
stored or logged. A recording, if asked for, is masked like ``visage anonymize
--keep-enrolled``, except for a watchlist purpose: there a match is a candidate pending
review, masked in the recording like a bystander (its face would show who matched).

A live source that was playing and drops, or cannot be reopened, is retried with exponential
backoff by one policy (:class:`_Backoff`; a source that never played is an error at once); a
stop event (SIGINT or SIGTERM in the CLI, the camera supervisor) ends the loop cleanly between
frames. Every run is audited, as failed when it raised; a failure to write that entry is
logged and never replaces the run's own error.

An admin's halt (:mod:`visage.usecases.halt`) covering the purpose or the camera refuses a new
run, and ends a running one between frames within about a second (the halts are read at most
once a second, not per frame); the report then says ``halted``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.errors import InputError
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.audit_ops import AuditOutcome, WatchAudit
from visage.governance.consent import normalise_purpose
from visage.media.crops import probe_crop
from visage.media.image import RGBImage
from visage.media.preview import LiveFeed
from visage.media.redact import RedactOptions, VideoRedactor
from visage.media.tracking import Track
from visage.media.video import Prefetch, StreamError, VideoReader, VideoWriter, is_live
from visage.usecases.halt import HaltPoll
from visage.usecases.matching import MatchOperation, PurposeMatcher
from visage.usecases.track_events import BestMatch, FrameTime, TrackEvents, WatchEvent
from visage.vision.types import Detection

__all__ = ["StopReason", "WatchEvent", "WatchOptions", "WatchReport", "watch"]

log = logging.getLogger("visage.watch")


class StopReason(StrEnum):
    """Why a watch run ended (the values are what reports and the CLI show)."""

    end_of_input = "end of input"
    stop_requested = "stop requested"
    frame_limit = "frame limit"
    reconnect_limit = "stream ended; reconnect limit reached"
    halted = "halted"
    """An admin halted 1:N processing for this purpose or camera (AI Act Art. 14(4)(e))."""


class WatchReport(BaseModel):
    camera: str
    source: str
    purpose: str
    frames: int
    tracks: int
    events: list[WatchEvent]
    reconnects: int
    dropped_frames: int = Field(
        description="live sources: frames skipped because processing was slower than the camera"
    )
    seconds: float
    stopped: StopReason = Field(
        description="end of input, stop requested, frame limit, reconnect limit reached, "
        "or halted (by an admin)"
    )


@dataclass
class WatchOptions:
    camera: str = "default"
    record: Path | None = None
    redact: RedactOptions | None = None
    max_frames: int | None = None
    max_reconnects: int | None = None
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    timeout_s: float = 10.0
    event_update_s: float = 5.0
    """A recognised track still in view updates its event at most this often (seconds of
    video), unless its score improves."""
    feed: LiveFeed | None = None
    """The camera's live view (fps, dropped frames, latest frame with every face masked)."""
    guard: Callable[[Session], None] | None = None
    """Run inside the transaction of every event or review item written; raises to refuse
    the write (a camera whose lease this replica lost: :func:`visage.store.leases.check`)."""


_Best = BestMatch
"""The best match the recogniser saw on a track, kept until the track ends."""


class _Session:
    def __init__(self, matcher: PurposeMatcher, options: WatchOptions) -> None:
        self.matcher, self.options = matcher, options
        self.core, self.purpose, self.actor = matcher.core, matcher.purpose, matcher.actor
        self.watchlist = matcher.watchlist
        self.best: dict[int, _Best] = {}

    def recognise(
        self, pixels: RGBImage, det: Detection, track: Track, frame: list[Detection]
    ) -> tuple[str, float] | None:
        """The matcher reads the eligible set for every face: a withdrawal takes effect on
        the next face seen."""
        found = self.matcher.match_detection(pixels, det)
        if found is None:
            return None  # a bystander: nothing of this face outlives the call
        probe = None
        if self.watchlist:  # the crop for reviewers, every other face of the frame masked
            probe = probe_crop(pixels, det.box, [d.box for d in frame if d is not det])
        score = found.match.score
        self.best[track.id] = _Best(score, found.face.quality.score, probe)
        return found.match.subject_id, score


@dataclass
class _Backoff:
    """Reopening a live source: one policy for a stream that dropped and for a source that
    could not be reopened. ``wait`` counts a reconnect and sleeps (a stop ends the sleep);
    it returns False instead when ``max_reconnects`` is reached."""

    options: WatchOptions
    stop: threading.Event
    count: int = 0
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """The source played: the next drop waits the shortest time again."""
        self.delay = self.options.backoff_s

    def wait(self) -> bool:
        limit = self.options.max_reconnects
        if limit is not None and self.count >= limit:
            return False
        self.count += 1
        self.stop.wait(self.delay)
        self.delay = min(self.options.max_backoff_s, self.delay * 2)
        return True


class _Run:
    """The counters and outputs of one watch run, and its frame loop."""

    def __init__(
        self,
        state: _Session,
        events: TrackEvents,
        *,
        live: bool,
        stop: threading.Event,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.state, self.events, self.options = state, events, state.options
        self.live, self.stop, self.progress = live, stop, progress
        self.frames = self.tracks = self.dropped = 0
        self.writer: VideoWriter | None = None
        self.limit_reached = False
        self.halts = HaltPoll(state.core, state.purpose, self.options.camera)
        self.halted = False

    def check_halt(self) -> bool:
        """Whether an admin halted this run (read from the store at most once a second)."""
        self.halted = self.halted or self.halts.check() is not None
        return self.halted

    def play(self, reader: VideoReader) -> None:
        """One opening of the source: frames until it ends or drops, or a stop is asked."""
        o, info = self.options, reader.info
        if o.record is not None and self.writer is None:
            self.writer = VideoWriter(o.record, reader)
        opened, fps = datetime.now(UTC), max(info.fps, 1.0)

        def frame_time(i: int) -> datetime:
            return opened + timedelta(seconds=i / fps)

        # A file's frames also have a position in the clip; a live source's only the clock.
        self.events.media_time = None if self.live else (lambda i: i / fps)

        redactor = VideoRedactor(
            self.state.core.analyzer.detector,
            info.width,
            info.height,
            o.redact or RedactOptions(),
            self.state.recognise,
            keep_recognised=not self.state.watchlist,
        )
        source_frames = Prefetch(reader.frames(), 4, drop_oldest=self.live)
        try:
            for frame in source_frames:
                if self.check_halt():
                    break
                pixels = np.array(frame.pixels)
                redactor.process(frame.index, pixels)
                if o.feed is not None:  # every face, recognised or not, masked again there
                    faces = [box for _, box in redactor.tracker.boxes_to_mask(frame.index)]
                    o.feed.frame(pixels, faces, self.dropped + source_frames.dropped)
                self.events.observe(redactor.tracker.tracks, frame_time)
                self._end(redactor.tracker.ended, frame_time)
                redactor.tracker.ended.clear()
                if self.writer is not None:
                    self.writer.write(pixels)
                self.frames += 1
                if self.progress is not None:
                    self.progress(self.frames)
                if o.max_frames is not None and self.frames >= o.max_frames:
                    self.limit_reached = True
                    self.stop.set()
                if self.stop.is_set():
                    break
        except StreamError:
            pass  # a live stream dropped: the caller reconnects
        finally:
            source_frames.close()
            self.dropped += source_frames.dropped
        self._end(redactor.finish(), frame_time)

    def _end(self, tracks: list[Track], frame_time: FrameTime) -> None:
        for track in tracks:
            self.events.end(track, frame_time, self.state.best.pop(track.id, None))
            self.tracks += 1


@contextlib.contextmanager
def _audit_guard(failed: bool) -> Iterator[None]:
    """Around the audit entry written in ``finally``: when the run already failed, a failure
    to audit is logged and swallowed, so that the caller sees the run's own error (raising
    here would replace it); when the run succeeded, it propagates — a run that could not be
    audited must not look ok."""
    try:
        yield
    except Exception:
        if not failed:
            raise
        log.error("watch: the audit entry of a failed run could not be written", exc_info=True)


def watch(
    core: Visage,
    source: str,
    purpose: str,
    options: WatchOptions | None = None,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    actor: Actor | None = None,
    authorisation_ref: str | None = None,
) -> WatchReport:
    options = options or WatchOptions()
    stop = stop or threading.Event()
    actor = actor or Actor.local()
    purpose = normalise_purpose(purpose)
    live = is_live(source)
    matcher = PurposeMatcher(
        core,
        purpose,
        actor,
        MatchOperation.watch,
        live=live,
        authorisation_ref=authorisation_ref,
        camera=options.camera,
    )
    matcher.check_gate()
    state = _Session(matcher, options)
    events = TrackEvents(
        core,
        purpose,
        options.camera,
        actor,
        watchlist=state.watchlist,
        update_every_s=options.event_update_s,
        guard=options.guard,
    )
    run = _Run(state, events, live=live, stop=stop, progress=progress)
    backoff = _Backoff(options, stop)
    t0 = time.perf_counter()
    stopped = StopReason.end_of_input
    played = False  # the source opened at least once
    failure: str | None = None
    try:
        while not stop.is_set() and not run.check_halt():
            try:
                reader = VideoReader(source, timeout_s=options.timeout_s)
            except InputError:
                # Never played: a wrong path or URL fails at once; else retried up to the limit.
                if not live or run.frames == 0 or not backoff.wait():
                    raise
                continue
            played = True
            backoff.reset()
            with reader:
                run.play(reader)
            if stop.is_set() or not live or run.halted:
                break
            if not backoff.wait():
                stopped = StopReason.reconnect_limit
                break
        if run.halted:
            stopped = StopReason.halted
        elif run.limit_reached:
            stopped = StopReason.frame_limit
        elif stop.is_set():
            stopped = StopReason.stop_requested
    except BaseException:  # audited as failed, never as ok (no secret, path or OS error)
        failure = "the source never opened" if not played else "the stream failed"
        raise
    finally:
        if run.writer is not None:
            run.writer.close()
        with _audit_guard(failure is not None), core.store.session() as session:
            core.audit(
                session,
                actor,
                WatchAudit(
                    purpose=purpose,
                    outcome=AuditOutcome.failed if failure else AuditOutcome.ok,
                    reason=failure,
                    camera=options.camera,
                    frames=run.frames,
                    tracks=run.tracks,
                    events=len(events.ended),
                    bystander_tracks=run.tracks - len(events.ended),
                    reconnects=backoff.count,
                    dropped_frames=run.dropped,
                    model=core.analyzer.model_fingerprint(),
                    threshold=core.threshold,
                    gallery=repo.gallery_digest(session),
                    authorisation_ref=matcher.authorisation_ref,
                ),
            )
    return WatchReport(
        camera=options.camera,
        source=source if "://" not in source else source.split("://")[0] + "://…",
        purpose=purpose,
        frames=run.frames,
        tracks=run.tracks,
        events=events.ended,
        reconnects=backoff.count,
        dropped_frames=run.dropped,
        seconds=round(time.perf_counter() - t0, 2),
        stopped=stopped,
    )
