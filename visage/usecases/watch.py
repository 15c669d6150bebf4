"""Watch a video file, a network stream (HTTP, RTSP) or a webcam for enrolled people.

Each frame is decoded, faces are detected and tracked (as in anonymisation); a track's face is
embedded on a few frames, keeping the best, and identified against the subjects whose valid
consent covers the purpose. Only a track recognised as such a subject becomes an event
(camera, start, end, subject id, best score, track length), written once when the track
ends; for a watchlist purpose it becomes a review item instead. A bystander's embedding
exists only inside one call of the recogniser and is never stored or logged. A recording,
if asked for, is masked like ``visage anonymize --keep-enrolled``.

A live source that was playing and drops is reopened with exponential backoff (a source that
cannot be opened at all is an error at once); a stop event (SIGINT or SIGTERM in the CLI,
the server's supervisor) ends the loop cleanly between frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from visage.app import Visage
from visage.errors import InputError
from visage.gallery import repository as repo
from visage.gallery.matching import calibrate
from visage.governance import review as review_gov
from visage.governance.access import owner_of
from visage.governance.audit import Actor
from visage.governance.consent import normalise_purpose
from visage.governance.events import record_event
from visage.governance.profile import GateError
from visage.media.image import RGBImage
from visage.media.redact import RedactOptions, VideoRedactor
from visage.media.tracking import Track
from visage.media.video import Prefetch, StreamError, VideoReader, VideoWriter, is_live
from visage.store.keyring import KeyDestroyedError
from visage.usecases.identify import probe_crop
from visage.usecases.profile import get_profile
from visage.vision.types import Detection, Face


class WatchEvent(BaseModel):
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
    stopped: str = Field(description="end of input, stop requested, or frame limit")


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


@dataclass
class _Best:
    """The best match seen on a track (the face crop is kept only for watchlist review)."""

    score: float
    quality: float
    probe: bytes | None


class _Session:
    def __init__(self, app: Visage, purpose: str, options: WatchOptions, actor: Actor) -> None:
        self.app, self.purpose, self.options, self.actor = app, purpose, options, actor
        self.watchlist = get_profile(app).is_watchlist(purpose)
        self.best: dict[int, _Best] = {}
        self.events: list[WatchEvent] = []

    def _eligible(self) -> frozenset[str]:
        """Checked for every face: a withdrawal takes effect on the next face seen."""
        with self.app.store.session() as session:
            return self.app.eligibility.get(session, self.purpose).ids

    def recognise(
        self, pixels: RGBImage, det: Detection, track: Track, frame: list[Detection]
    ) -> tuple[str, float] | None:
        eligible = self._eligible()
        if not eligible:
            return None
        face: Face = self.app.analyzer.describe(pixels, [det])[0]
        if face.embedding is None:
            return None
        hits = self.app.gallery.search(face.embedding[None, :], 1, allowed=eligible)[0]
        if not hits or (score := calibrate(hits[0].cosine)) < self.app.threshold:
            return None  # a bystander: nothing of this face outlives the call
        probe = None
        if self.watchlist:  # the crop for reviewers, every other face of the frame masked
            faces = [face] + [Face(d, face.quality) for d in frame if d is not det]
            probe = probe_crop(pixels, faces, 0)
        self.best[track.id] = _Best(score, face.quality.score, probe)
        return hits[0].label, score

    def close_track(self, track: Track, frame_time: Callable[[int], datetime]) -> None:
        if track.label is None:
            return
        best = self.best.pop(track.id, _Best(track.best_score, 0.0, None))
        subject_id, score = track.label, round(max(best.score, track.best_score), 4)
        event = WatchEvent(
            camera=self.options.camera,
            subject_id=subject_id,
            purpose=self.purpose,
            started_at=frame_time(track.first_frame),
            ended_at=frame_time(track.last_seen),
            best_score=score,
            frames=track.hits,
        )
        try:
            with self.app.store.session() as session:
                if self.watchlist:
                    item = review_gov.open_review(
                        session,
                        self.app.keyring,
                        review_gov.Candidate(
                            subject_id=subject_id,
                            purpose=self.purpose,
                            score=score,
                            threshold=self.app.threshold,
                            quality=round(best.quality, 3),
                            source="camera",
                            camera=self.options.camera,
                            requested_by=self.actor.id,
                            requester_owner=owner_of(session, self.actor.id),
                        ),
                        best.probe,
                    )
                    # Blind until released: the report keeps only the review id.
                    event.review_id, event.subject_id, event.best_score = item.id, None, None
                else:
                    record_event(
                        session,
                        subject_id=subject_id,
                        purpose=self.purpose,
                        source="camera",
                        camera=self.options.camera,
                        best_score=score,
                        started_at=event.started_at,
                        ended_at=event.ended_at,
                        frames=event.frames,
                    )
        except (KeyDestroyedError, IntegrityError):
            return  # the subject was erased while on camera: no event about them
        self.events.append(event)
        if not self.watchlist:
            self.app.notifier.send("event", event.model_dump(mode="json"))


def watch(
    app: Visage,
    source: str,
    purpose: str,
    options: WatchOptions | None = None,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    actor: Actor | None = None,
) -> WatchReport:
    options = options or WatchOptions()
    stop = stop or threading.Event()
    actor = actor or Actor.local()
    purpose = normalise_purpose(purpose)
    live = is_live(source)
    refusal = get_profile(app).identification_refusal(live=live)
    if refusal is not None:
        with app.store.session() as session:
            app.audit(session, actor, "watch", purpose=purpose, outcome="refused", reason=refusal)
        raise GateError(refusal)
    state = _Session(app, purpose, options, actor)
    t0 = time.perf_counter()
    frames = reconnects = tracks = dropped = 0
    stopped = "end of input"
    writer: VideoWriter | None = None
    backoff = options.backoff_s
    played = False  # the source opened at least once
    failure: str | None = None
    try:
        while not stop.is_set():
            try:
                reader = VideoReader(source, timeout_s=options.timeout_s)
            except InputError:
                if not live or frames == 0:  # never played: a wrong path or URL fails at once
                    raise
                if options.max_reconnects is not None and reconnects >= options.max_reconnects:
                    raise
                reconnects += 1
                stop.wait(backoff)
                backoff = min(options.max_backoff_s, backoff * 2)
                continue
            with reader:
                played = True
                backoff = options.backoff_s
                info = reader.info
                if options.record is not None and writer is None:
                    writer = VideoWriter(options.record, reader)
                opened = datetime.now(UTC)
                redactor = VideoRedactor(
                    app.analyzer.detector,
                    info.width,
                    info.height,
                    options.redact or RedactOptions(),
                    state.recognise,
                )

                def frame_time(
                    i: int, opened: datetime = opened, fps: float = info.fps
                ) -> datetime:
                    return opened + timedelta(seconds=i / max(fps, 1.0))

                source_frames = Prefetch(reader.frames(), 4, drop_oldest=live)
                try:
                    for frame in source_frames:
                        pixels = np.array(frame.pixels)
                        redactor.process(frame.index, pixels)
                        for track in redactor.tracker.ended:
                            state.close_track(track, frame_time)
                        tracks += len(redactor.tracker.ended)
                        redactor.tracker.ended.clear()
                        if writer is not None:
                            writer.write(pixels)
                        frames += 1
                        if progress is not None:
                            progress(frames)
                        if options.max_frames is not None and frames >= options.max_frames:
                            stopped = "frame limit"
                            stop.set()
                        if stop.is_set():
                            break
                except StreamError:
                    pass  # a live stream dropped: reconnect below
                finally:
                    source_frames.close()
                    dropped += source_frames.dropped
                for track in redactor.finish():
                    state.close_track(track, frame_time)
                    tracks += 1
            if stop.is_set():
                stopped = "stop requested" if stopped == "end of input" else stopped
                break
            if not live:
                break
            if options.max_reconnects is not None and reconnects >= options.max_reconnects:
                stopped = "stream ended; reconnect limit reached"
                break
            reconnects += 1
            stop.wait(backoff)
            backoff = min(options.max_backoff_s, backoff * 2)
    except BaseException:  # audited as failed, never as ok (no secret, path or OS error)
        failure = "the source never opened" if not played else "the stream failed"
        raise
    finally:
        if writer is not None:
            writer.close()
        with app.store.session() as session:
            app.audit(
                session,
                actor,
                "watch",
                purpose=purpose,
                outcome="failed" if failure else "ok",
                **({"reason": failure} if failure else {}),
                camera=options.camera,
                frames=frames,
                tracks=tracks,
                events=len(state.events),
                bystander_tracks=tracks - len(state.events),
                reconnects=reconnects,
                dropped_frames=dropped,
                model=app.analyzer.model_fingerprint(),
                threshold=app.threshold,
                gallery=repo.gallery_digest(session),
            )
    return WatchReport(
        camera=options.camera,
        source=source if "://" not in source else source.split("://")[0] + "://…",
        purpose=purpose,
        frames=frames,
        tracks=tracks,
        events=state.events,
        reconnects=reconnects,
        dropped_frames=dropped,
        seconds=round(time.perf_counter() - t0, 2),
        stopped=stopped,
    )
