"""Value types shared by the vision modules."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Embedding = NDArray[np.float32]
"""A unit-length float32 vector (128 values for the dlib ResNet)."""

Points = NDArray[np.float32]
"""An (N, 2) array of x, y pixel coordinates."""

RGBImage = NDArray[np.uint8]
"""Decoded pixels: H x W x 3, RGB, uint8. Defined here, the lowest layer that needs it, so
that ``vision`` imports nothing of ``media``."""


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in image pixels: left, top, right, bottom."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    def as_list(self) -> list[int]:
        return [round(self.left), round(self.top), round(self.right), round(self.bottom)]


@dataclass(frozen=True, slots=True)
class Detection:
    """A detected face: box, confidence and five landmarks.

    Landmarks are, in order: right eye, left eye (as seen in the image: the first is on the
    image's left), nose tip, mouth corner on the image's left, mouth corner on its right.
    """

    box: Box
    score: float
    landmarks: Points


@dataclass(frozen=True, slots=True)
class Quality:
    """How usable a face is for recognition. Geometry and sharpness only.

    ``yaw`` and ``roll`` are head-pose proxies from the landmarks (yaw: nose offset from the
    eyes' midpoint over the eye distance, 0 = frontal; roll in degrees). ``score`` in [0, 1]
    folds size, sharpness and pose into one number.
    """

    face_px: float
    interocular_px: float
    sharpness: float
    yaw: float
    roll_deg: float
    score: float


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face with its quality and, once embedded, its template vector.

    ``chip`` is the aligned crop the embedding was computed from (kept in memory only: the
    enrolment use-case seals it as the template's reference crop; nothing else keeps it).
    """

    detection: Detection
    quality: Quality
    embedding: Embedding | None = None
    chip: RGBImage | None = field(default=None, repr=False, compare=False)
