"""An independent judge of masked frames: dlib, not the CenterFace model Visage masks with.

For each frame pair (original, masked):
- *found*: faces dlib's HOG detector, upsampled once, still finds in the masked frame;
- *re-identifiable*: for each face HOG finds confidently (score >= ``CONFIDENT``) in the
  original, dlib's ResNet descriptor
  (``face_recognition_models``) computed on the masked frame at that face's landmarks — the
  original's landmarks, an attacker who knows exactly where the face was — lies within 0.6
  of the original face's descriptor, dlib's own "same person" threshold.

The descriptors are dlib's: dlib's chip (``get_face_chip``, as ``compute_face_descriptor``
cuts it) through dlib's ResNet weights, run by ONNX Runtime (Visage's conversion of the
shipped weights, :mod:`visage.vision.dlib_onnx`) rather than by dlib, which is built here
without BLAS: about 9 ms a face on one core against dlib's 115, and within 1e-6 of dlib's
own descriptor (``dlib_descriptors`` is the reference; tests/media/test_masks.py checks the
two agree on masked faces, tests/vision/test_onnx_embedder.py on every face of the test
data). The detector, HOG, is dlib's own: nothing of the CenterFace model Visage masks with.

Used by tests/media/test_masks.py and bench/anonymize.py; frames are judged in worker
processes (dlib holds the GIL), the models loaded once per process (or once before the
workers are forked: ``load_models``). An original frame is studied once (``study``: its
faces, landmarks and descriptors) and each masked version judged against that study
(``judge_masked``), so several outputs of one clip share the original's work.
"""

from __future__ import annotations

import functools
import os
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
ENGINE_TOLERANCE = 1e-4
"""How far a distance may be from dlib's own (ONNX Runtime against dlib: under 1e-6
measured): a face closer than ``REIDENTIFIABLE + ENGINE_TOLERANCE`` counts as re-identifiable,
so the judge is never more lenient than dlib run by itself."""
CODEC_NOISE = 8.0
"""Mean absolute difference (per channel, 0-255) below which a region of the output is the
original up to the codec: nothing was masked there (a mask changes a face by ~17)."""


@functools.cache
def _models() -> tuple[Any, Any, bytes]:
    """dlib's HOG detector and 68-point landmark model, and the ONNX graph of dlib's ResNet."""
    import dlib
    import face_recognition_models as frm

    from visage.vision.embed import OnnxEmbedder

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(frm.pose_predictor_model_location()),
        OnnxEmbedder().convert(),
    )


@functools.cache
def _session(pid: int) -> Any:
    """The descriptor's ONNX Runtime session of process ``pid``, on one thread: a session
    made before a fork is not used after it (its threads do not survive one)."""
    from visage.vision.ort import make_session

    return make_session(_models()[2], intra_op_threads=1)


def load_models() -> None:
    """Load the models in this process now. Worker processes forked after this inherit
    them instead of each loading its own (about 4 s a process on the loaded 2-core machine)."""
    _models()


def _chips(image: NDArray[np.uint8], shapes: list[Any]) -> list[NDArray[np.uint8]]:
    """dlib's aligned 150x150 chips of the faces at ``shapes`` (landmarks), cut as
    ``compute_face_descriptor`` cuts them (padding 0.25)."""
    import dlib

    return [np.asarray(dlib.get_face_chip(image, s, size=150, padding=0.25)) for s in shapes]


def descriptors(image: NDArray[np.uint8], shapes: list[Any]) -> NDArray[np.float64]:
    """dlib's ResNet descriptors (unnormalised, as dlib gives them) of the faces at
    ``shapes`` in ``image``, one row each, run by ONNX Runtime."""
    if not shapes:
        return np.empty((0, 128))
    session = _session(os.getpid())
    name = session.get_inputs()[0].name
    rows = session.run(None, {name: np.stack(_chips(image, shapes))})[0]
    return np.asarray(rows, np.float64)


def dlib_descriptors(image: NDArray[np.uint8], shapes: list[Any]) -> NDArray[np.float64]:
    """The same descriptors computed by dlib itself (``compute_face_descriptor``): the
    reference that ``descriptors`` must equal."""
    encoder = _dlib_encoder()
    return np.array([np.array(encoder.compute_face_descriptor(image, s)) for s in shapes])


@functools.cache
def _dlib_encoder() -> Any:
    import dlib
    import face_recognition_models as frm

    return dlib.face_recognition_model_v1(frm.face_recognition_model_location())


@dataclass
class Verdict:
    """What the judge saw in one frame."""

    faces_in_original: int = 0
    found: int = 0
    judge_noise: int = 0
    reidentifiable: int = 0
    distances: list[float] = field(default_factory=list)


@dataclass
class Study:
    """What the judge saw in an original frame, computed once however many masked versions
    of it are judged (picklable: it travels to worker processes)."""

    faces: list[tuple[Any, NDArray[np.float64]]]
    """(landmarks, descriptor) of each face HOG finds confidently."""
    weak: list[tuple[Any, float]]
    """(rectangle, score) of each detection under ``CONFIDENT``, down to ``NOISE_FLOOR``."""


def study(pixels: NDArray[np.uint8]) -> Study:
    """The faces and weak detections of one original RGB frame."""
    hog, predictor, _ = _models()
    original = np.ascontiguousarray(pixels)
    rects, scores, _ = hog.run(original, 1, NOISE_FLOOR)
    weak = [(r, s) for r, s in zip(rects, scores, strict=True) if s < CONFIDENT]
    shapes = [predictor(original, r) for r, s in zip(rects, scores, strict=True) if s >= CONFIDENT]
    return Study(list(zip(shapes, descriptors(original, shapes), strict=True)), weak)


def judge_masked(original: NDArray[np.uint8], seen: Study, pixels: NDArray[np.uint8]) -> Verdict:
    """The verdict on one masked version ``pixels`` of the RGB frame ``original`` (same
    size), whose ``study`` is ``seen``."""
    hog, _, _ = _models()
    masked = np.ascontiguousarray(pixels)
    verdict = Verdict(faces_in_original=len(seen.faces))
    for rect in hog(masked, 1):
        # Weak in the original, and either HOG fires there too or nothing was masked
        # there (the codec, not a mask, lifted its score above 0).
        if any(
            _iou(rect, w) > 0.5 and (s >= 0 or _unchanged(original, masked, rect))
            for w, s in seen.weak
        ):
            verdict.judge_noise += 1
        else:
            verdict.found += 1
    after = descriptors(masked, [shape for shape, _ in seen.faces])
    for (_, before), descriptor in zip(seen.faces, after, strict=True):
        distance = float(np.linalg.norm(before - descriptor))
        verdict.distances.append(distance)
        verdict.reidentifiable += distance < REIDENTIFIABLE + ENGINE_TOLERANCE
    return verdict


def judge_frame(pair: tuple[NDArray[np.uint8], NDArray[np.uint8]]) -> Verdict:
    """The verdict on one (original, masked) pair of RGB frames of the same size."""
    return judge_outputs((pair[0], [pair[1]]))[0]


def judge_outputs(
    job: tuple[NDArray[np.uint8], list[NDArray[np.uint8]]],
) -> list[Verdict]:
    """The verdicts on several masked versions of one original frame (the original's faces
    and descriptors computed once)."""
    seen = study(job[0])
    return [judge_masked(job[0], seen, pixels) for pixels in job[1]]


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
