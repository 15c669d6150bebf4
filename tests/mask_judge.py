"""An independent judge of masked frames: dlib, not the CenterFace model Visage masks with.

For each frame pair (original, masked):
- *found*: faces dlib's HOG detector, upsampled once, still finds in the masked frame;
- *re-identifiable*: for each face HOG finds confidently (score >= ``CONFIDENT``) in the
  original, dlib's ResNet descriptor
  (``face_recognition_models``) computed on the masked frame at that face's landmarks — the
  original's landmarks, an attacker who knows exactly where the face was — lies within 0.6
  of the original face's descriptor, dlib's own "same person" threshold.

Used by tests/media/test_masks.py and bench/anonymize.py; frames are judged in worker
processes (dlib holds the GIL), the models loaded once per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

REIDENTIFIABLE = 0.6
"""dlib's threshold: descriptors closer than this are the same person."""
CONFIDENT = 0.5
"""HOG's score for a face in the original. Below it, HOG also fires on backdrops (a poster's
lettering scores about 0.1, real faces 1 to 2.5): a detection in the masked frame at the
place of such a weak detection of the original (IoU > 0.5) is the judge's own noise, counted
apart as ``judge_noise``, not as a face found through a mask."""
NOISE_FLOOR = -0.5
"""Lowest score of the original kept as a candidate for noise: re-encoding alone (CRF 23,
no mask) moves HOG's score of an unmasked backdrop by up to ~0.3 (Hamilton frame 236: a
hand and a bag, -0.28 in the original, +0.02 in the output)."""
CODEC_NOISE = 8.0
"""Mean absolute difference (per channel, 0-255) below which a region of the output is the
original up to the codec: nothing was masked there (a mask changes a face by ~17)."""


@functools.cache
def _models() -> tuple[Any, Any, Any]:
    import dlib
    import face_recognition_models as frm

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(frm.pose_predictor_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


@dataclass
class Verdict:
    """What the judge saw in one frame."""

    faces_in_original: int = 0
    found: int = 0
    judge_noise: int = 0
    reidentifiable: int = 0
    distances: list[float] = field(default_factory=list)


def judge_frame(pair: tuple[NDArray[np.uint8], NDArray[np.uint8]]) -> Verdict:
    """The verdict on one (original, masked) pair of RGB frames of the same size."""
    return judge_outputs((pair[0], [pair[1]]))[0]


def judge_outputs(
    job: tuple[NDArray[np.uint8], list[NDArray[np.uint8]]],
) -> list[Verdict]:
    """The verdicts on several masked versions of one original frame (the original's faces
    and descriptors computed once)."""
    hog, predictor, encoder = _models()
    original = np.ascontiguousarray(job[0])
    rects, scores, _ = hog.run(original, 1, NOISE_FLOOR)
    weak = [(r, s) for r, s in zip(rects, scores, strict=True) if s < CONFIDENT]
    faces = []
    for rect, score in zip(rects, scores, strict=True):
        if score >= CONFIDENT:
            shape = predictor(original, rect)
            faces.append((shape, np.array(encoder.compute_face_descriptor(original, shape))))
    verdicts = []
    for pixels in job[1]:
        masked = np.ascontiguousarray(pixels)
        verdict = Verdict(faces_in_original=len(faces))
        for rect in hog(masked, 1):
            # Weak in the original, and either HOG fires there too or nothing was masked
            # there (the codec, not a mask, lifted its score above 0).
            if any(
                _iou(rect, w) > 0.5 and (s >= 0 or _unchanged(original, masked, rect))
                for w, s in weak
            ):
                verdict.judge_noise += 1
            else:
                verdict.found += 1
        for shape, before in faces:
            after = np.array(encoder.compute_face_descriptor(masked, shape))
            distance = float(np.linalg.norm(before - after))
            verdict.distances.append(distance)
            verdict.reidentifiable += distance < REIDENTIFIABLE
        verdicts.append(verdict)
    return verdicts


def hog_count(pixels: NDArray[np.uint8]) -> int:
    """Faces dlib's HOG detector (upsampled once) finds in one RGB frame."""
    return len(_models()[0](np.ascontiguousarray(pixels), 1))


def _unchanged(original: NDArray[np.uint8], masked: NDArray[np.uint8], rect: Any) -> bool:
    """Whether ``masked`` is ``original`` up to codec noise inside ``rect``."""
    h, w = original.shape[:2]
    x0, y0 = max(0, rect.left()), max(0, rect.top())
    x1, y1 = min(w, rect.right() + 1), min(h, rect.bottom() + 1)
    if x1 <= x0 or y1 <= y0:
        return False
    a = original[y0:y1, x0:x1].astype(np.int16)
    return float(np.abs(a - masked[y0:y1, x0:x1]).mean()) < CODEC_NOISE


def _iou(a: Any, b: Any) -> float:
    """Intersection over union of two dlib rectangles."""
    inter = a.intersect(b)
    overlap = float(inter.area()) if inter.width() > 0 and inter.height() > 0 else 0.0
    return overlap / float(a.area() + b.area() - overlap)
