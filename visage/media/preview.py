"""A running camera's live view: throughput counters and the latest frame, every face masked.

The console shows a preview of each running camera. The watcher hands :meth:`LiveFeed.frame`
each processed frame with the boxes of every face it follows (bystanders and recognised
subjects alike); at most once every ``interval_s`` the feed masks *all* of them on a copy,
downscales it and keeps only the JPEG. No raw frame is ever stored: what the slot holds
can leave the process as it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import cv2
import numpy as np

from visage.media.blur import BlurMode, mask_faces
from visage.media.crops import encode_image
from visage.vision.types import Box, RGBImage

PREVIEW_MAX_SIDE = 640
PREVIEW_JPEG_QUALITY = 70
PREVIEW_MARGIN = 0.3
"""Wider than the redactor's margin: a preview must never show the edge of a face."""


class LiveFeed:
    """Frames per second, dropped frames and the latest masked JPEG of one camera's watch.
    Written by the watcher thread, read by any door; thread-safe."""

    def __init__(self, interval_s: float = 1.0, fps_window_s: float = 2.0) -> None:
        self.interval_s, self.fps_window_s = interval_s, fps_window_s
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self._jpeg_at = 0.0
        self._next_preview = 0.0
        self._window_start = time.monotonic()
        self._window_frames = 0
        self.fps = 0.0
        self.dropped = 0

    def frame(self, pixels: RGBImage, faces: Iterable[Box], dropped: int = 0) -> None:
        """One processed frame; ``faces``: every face box of the frame, whatever it is;
        ``dropped``: the frames the source skipped so far in this run."""
        now = time.monotonic()
        with self._lock:
            self._window_frames += 1
            elapsed = now - self._window_start
            if elapsed >= self.fps_window_s:
                self.fps = round(self._window_frames / elapsed, 1)
                self._window_start, self._window_frames = now, 0
            self.dropped = max(self.dropped, dropped)
            due = now >= self._next_preview
            if due:
                self._next_preview = now + self.interval_s
        if due:
            jpeg = masked_jpeg(pixels, faces)
            with self._lock:
                self._jpeg, self._jpeg_at = jpeg, time.monotonic()

    def jpeg(self, max_age_s: float = 30.0) -> bytes | None:
        """The latest masked frame, or None when there is none that recent."""
        with self._lock:
            if self._jpeg is None or time.monotonic() - self._jpeg_at > max_age_s:
                return None
            return self._jpeg

    def stopped(self) -> None:
        """The watch ended: forget the frame, the rate falls to zero."""
        with self._lock:
            self._jpeg, self.fps = None, 0.0
            self._window_start, self._window_frames = time.monotonic(), 0


def masked_jpeg(pixels: RGBImage, faces: Iterable[Box]) -> bytes:
    """A downscaled JPEG of ``pixels`` with every box in ``faces`` masked (on a copy,
    before downscaling, so that no face survives at any scale)."""
    canvas = pixels.copy()
    mask_faces(canvas, list(faces), mode=BlurMode.pixelate, margin=PREVIEW_MARGIN)
    h, w = canvas.shape[:2]
    scale = PREVIEW_MAX_SIDE / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        canvas = np.asarray(cv2.resize(canvas, size, interpolation=cv2.INTER_AREA), np.uint8)
    return encode_image(canvas, ".jpg", jpeg_quality=PREVIEW_JPEG_QUALITY)
