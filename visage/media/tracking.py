"""Face tracks across video frames: IoU association, constant-velocity prediction, and a hold.

A face the detector misses for a few frames (motion blur, a turned head) must stay masked:
each track keeps predicting its box from its last velocity for ``hold`` frames after its last
detection, and the box that is masked is the union of the prediction and, while it lasts,
the previous box — coverage never shrinks because the detector blinked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visage.vision.types import Box, Detection


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.right, b.right) - max(a.left, b.left))
    iy = max(0.0, min(a.bottom, b.bottom) - max(a.top, b.top))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def union_box(a: Box, b: Box) -> Box:
    return Box(
        min(a.left, b.left), min(a.top, b.top), max(a.right, b.right), max(a.bottom, b.bottom)
    )


def _shift(box: Box, dx: float, dy: float) -> Box:
    return Box(box.left + dx, box.top + dy, box.right + dx, box.bottom + dy)


@dataclass
class Track:
    """One face over time. ``label`` is set when the face was recognised as an enrolled,
    consenting subject; identity checks happen at most every few frames."""

    id: int
    box: Box
    first_frame: int
    last_seen: int
    hits: int = 1
    velocity: tuple[float, float] = (0.0, 0.0)
    previous: Box | None = None
    label: str | None = None
    best_score: float = 0.0
    attempts: int = 0
    last_attempt: int = -(10**9)

    def predicted(self, frame: int) -> Box:
        gap = frame - self.last_seen
        return _shift(self.box, self.velocity[0] * gap, self.velocity[1] * gap)

    def mask_box(self, frame: int) -> Box:
        """What to mask on ``frame``: while detected, this box joined with the previous one
        (a moving face is covered along its path); while coasting, the prediction joined
        with the last seen box (it may have stopped rather than moved on)."""
        if frame == self.last_seen:
            return self.box if self.previous is None else union_box(self.box, self.previous)
        return union_box(self.predicted(frame), self.box)


class IouTracker:
    def __init__(self, *, iou_threshold: float = 0.2, hold: int = 12) -> None:
        self.iou_threshold, self.hold = iou_threshold, hold
        self.tracks: list[Track] = []
        self._next = 1
        self.ended: list[Track] = []

    def update(self, frame: int, detections: list[Detection]) -> list[tuple[Track, Detection]]:
        """Associate this frame's detections; returns (track, detection) pairs, new tracks
        included. Tracks unseen for more than ``hold`` frames end (see ``ended``)."""
        pairs: list[tuple[Track, Detection]] = []
        free = list(range(len(detections)))
        if self.tracks and detections:
            scores = np.array(
                [[iou(t.predicted(frame), d.box) for d in detections] for t in self.tracks]
            )
            while scores.size and scores.max() >= self.iou_threshold:
                flat = np.unravel_index(int(scores.argmax()), scores.shape)
                ti, di = int(flat[0]), int(flat[1])
                track, det = self.tracks[int(ti)], detections[int(di)]
                gap = max(1, frame - track.last_seen)
                (cx0, cy0), (cx1, cy1) = track.box.center, det.box.center
                vx, vy = (cx1 - cx0) / gap, (cy1 - cy0) / gap
                track.velocity = (
                    0.5 * track.velocity[0] + 0.5 * vx,
                    0.5 * track.velocity[1] + 0.5 * vy,
                )
                track.previous, track.box = track.box, det.box
                track.last_seen, track.hits = frame, track.hits + 1
                pairs.append((track, det))
                free.remove(int(di))
                scores[int(ti), :] = -1
                scores[:, int(di)] = -1
        for di in free:
            track = Track(self._next, detections[di].box, frame, frame)
            self._next += 1
            self.tracks.append(track)
            pairs.append((track, detections[di]))
        alive = [t for t in self.tracks if frame - t.last_seen <= self.hold]
        self.ended.extend(t for t in self.tracks if frame - t.last_seen > self.hold)
        self.tracks = alive
        return pairs

    def boxes_to_mask(self, frame: int) -> list[tuple[Track, Box]]:
        """Every live track's box for ``frame`` (detected, or predicted while held)."""
        return [(t, t.mask_box(frame)) for t in self.tracks]

    def finish(self) -> list[Track]:
        """End every track (end of the video or stream); returns all ended tracks."""
        self.ended.extend(self.tracks)
        self.tracks = []
        return self.ended
