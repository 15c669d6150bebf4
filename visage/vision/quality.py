"""Face quality from geometry and sharpness: size, eye distance, blur, head pose.

These are properties of the picture, not of the person: nothing here estimates who or
what someone is.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2

from visage.vision.types import Detection, Quality, RGBImage

# Reference points for the [0, 1] score: a face this size, this sharp and this frontal
# scores 1 on that component.
_GOOD_INTEROCULAR_PX = 40.0
_GOOD_SHARPNESS = 100.0
_MAX_YAW = 0.6


def measure(detection: Detection, chip: RGBImage | None) -> Quality:
    pts = detection.landmarks
    eye_a, eye_b, nose = pts[0], pts[1], pts[2]
    dx, dy = float(eye_b[0] - eye_a[0]), float(eye_b[1] - eye_a[1])
    interocular = math.hypot(dx, dy)
    roll = math.degrees(math.atan2(dy, dx))
    mid = (eye_a + eye_b) / 2
    # Project the nose onto the eye line: its signed offset from the midpoint, relative to
    # the eye distance, grows as the head turns (0 when frontal).
    if interocular > 1e-6:
        yaw = float(((nose[0] - mid[0]) * dx + (nose[1] - mid[1]) * dy) / interocular**2)
    else:
        yaw = 1.0
    sharpness = _sharpness(chip) if chip is not None else 0.0
    face_px = float(min(detection.box.width, detection.box.height))
    size_term = min(interocular / _GOOD_INTEROCULAR_PX, 1.0)
    sharp_term = min(sharpness / _GOOD_SHARPNESS, 1.0)
    pose_term = max(0.0, 1.0 - abs(yaw) / _MAX_YAW)
    score = (size_term * sharp_term * pose_term) ** (1 / 3)
    return Quality(
        face_px=face_px,
        interocular_px=interocular,
        sharpness=sharpness,
        yaw=yaw,
        roll_deg=roll,
        score=float(score),
    )


def _sharpness(chip: RGBImage) -> float:
    """Variance of the Laplacian of the aligned chip (blurred faces score low)."""
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def weakest(quality: Quality) -> Literal["size", "sharpness", "pose"]:
    """Which component pulls ``quality.score`` down most: why a face scored low."""
    size = min(quality.interocular_px / _GOOD_INTEROCULAR_PX, 1.0)
    sharp = min(quality.sharpness / _GOOD_SHARPNESS, 1.0)
    pose = max(0.0, 1.0 - abs(quality.yaw) / _MAX_YAW)
    if sharp <= size and sharp <= pose:
        return "sharpness"
    return "size" if size <= pose else "pose"
