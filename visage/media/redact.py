"""Frame-by-frame face masking for video: adaptive detection scale, tracking, masking.

Per frame: detect (at a scale adapted to the faces being followed, with a full-resolution
scan every ``rescan_every`` frames to catch small newcomers), associate detections to tracks,
optionally ask ``recognise`` whether a track is an enrolled, consenting subject, then mask
every track that is not — including tracks the detector missed on this frame, at their
predicted position, for ``hold`` frames. A track is masked until it is recognised: when in
doubt, blur. With ``keep_recognised=False`` a recognised track is labelled but masked all
the same (a watchlist candidate pending review: showing the face would show who matched).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from visage.media.blur import BlurMode, MaskShape, mask_faces
from visage.media.image import RGBImage
from visage.media.tracking import IouTracker, Track
from visage.vision.detect import CenterFaceDetector, ScalePolicy
from visage.vision.types import Detection

Recognise = Callable[[RGBImage, Detection, Track, list[Detection]], tuple[str, float] | None]
"""Given a frame, one detection, its track and all of the frame's detections: (subject id,
score) if it is a consenting enrolled subject, else None. Whatever it computes for a
bystander must die with the call."""


@dataclass(frozen=True)
class RedactOptions:
    threshold: float = 0.25
    mode: BlurMode = BlurMode.gaussian
    shape: MaskShape = MaskShape.ellipse
    margin: float = 0.25
    rescan_every: int = 10
    min_face_at_scale: float = 24.0
    floor_side: int = 320
    max_side: int = 1280
    hold: int = 12
    recognise_every: int = 5
    recognise_attempts: int = 6


class AdaptiveScale:
    """Detect at the smallest input that still shows the faces being followed at
    ``min_face_at_scale`` pixels (``floor_side`` when none is followed: faces of about
    ``longer / floor_side`` x 16 px and up are still found); every ``rescan_every`` frames,
    at full resolution (up to ``max_side``)."""

    def __init__(self, width: int, height: int, options: RedactOptions) -> None:
        self.longer = max(width, height)
        self.options = options
        self.full = ScalePolicy(max_side=min(options.max_side, self.longer), min_side=64)

    def policy(self, index: int, tracks: list[Track]) -> ScalePolicy:
        o = self.options
        if index % o.rescan_every == 0:
            return self.full  # a periodic scan at full resolution finds small newcomers
        if not tracks:
            factor = o.floor_side / self.longer
        else:
            smallest = min(min(t.box.width, t.box.height) for t in tracks)
            factor = min(1.0, o.min_face_at_scale / max(smallest, 1.0))
        side = int(min(self.full.max_side, max(o.floor_side, self.longer * factor)))
        return ScalePolicy(max_side=side, min_side=64)


class VideoRedactor:
    """Masks every face of a stream of frames, one frame at a time, with no face leaking
    between detections: detection at an adaptive scale, tracks held at their predicted
    place when the detector misses them, an optional ``recognise`` callback that may keep
    a consenting subject visible (unless ``keep_recognised`` is False: then it only labels
    the track). One instance per video or camera run; not thread-safe.
    """

    def __init__(
        self,
        detector: CenterFaceDetector,
        width: int,
        height: int,
        options: RedactOptions | None = None,
        recognise: Recognise | None = None,
        *,
        keep_recognised: bool = True,
    ) -> None:
        self.detector, self.options = detector, options or RedactOptions()
        self.scale = AdaptiveScale(width, height, self.options)
        self.tracker = IouTracker(hold=self.options.hold)
        self.recognise = recognise
        self.keep_recognised = keep_recognised
        self.masked = 0
        self.kept_visible = 0

    def process(self, index: int, pixels: RGBImage) -> RGBImage:
        """Mask ``pixels`` in place and return it."""
        o = self.options
        policy = self.scale.policy(index, self.tracker.tracks)
        detections = self.detector.detect(pixels, o.threshold, policy)
        for track, det in self.tracker.update(index, detections):
            self._maybe_recognise(index, pixels, track, det, detections)
        boxes = []
        for track, box in self.tracker.boxes_to_mask(index):
            if track.label is not None and self.keep_recognised:
                self.kept_visible += 1
            else:
                boxes.append(box)
        self.masked += mask_faces(pixels, boxes, mode=o.mode, shape=o.shape, margin=o.margin)
        return pixels

    def _maybe_recognise(
        self,
        index: int,
        pixels: RGBImage,
        track: Track,
        det: Detection,
        detections: list[Detection],
    ) -> None:
        o = self.options
        if self.recognise is None or track.label is not None:
            return
        if track.attempts >= o.recognise_attempts or index - track.last_attempt < o.recognise_every:
            return
        track.attempts += 1
        track.last_attempt = index
        found = self.recognise(pixels, det, track, detections)
        if found is not None:
            track.label, track.best_score = found

    def finish(self) -> list[Track]:
        return self.tracker.finish()
