"""Alignment: dlib's 5-point landmark model, then a similarity warp to the 150x150 chip
the dlib ResNet was trained on (``padding=0.25``, as in dlib's reference pipeline).

The CenterFace box seeds the landmark model; dlib's 5 points (eye corners and the base of
the nose) define the warp, because the embedder was trained on chips aligned exactly so.

Models of the ArcFace family (SFace) were trained on another template: 112x112 chips warped
by a similarity transform from five landmarks (eyes, nose tip, mouth corners) to fixed
positions; :func:`arcface_chip` makes them from CenterFace's own landmarks.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from visage.vision.model import LazyModel, file_sha256, package_file
from visage.vision.types import Box, RGBImage

CHIP_SIZE = 150
CHIP_PADDING = 0.25


class FaceAligner(LazyModel[object]):
    """Turns a face box into an aligned 150x150 RGB chip."""

    name = "dlib-shape-predictor-5"

    def __init__(self) -> None:
        super().__init__()
        self.path = package_file(
            "face_recognition_models",
            "models/shape_predictor_5_face_landmarks.dat",
            pip_name="face_recognition_models",
        )
        self._call_lock = threading.Lock()

    def _load(self) -> object:
        import dlib

        return dlib.shape_predictor(str(self.path))

    @property
    def fingerprint(self) -> str:
        return file_sha256(self.path)

    def chip(self, image: RGBImage, box: Box) -> RGBImage:
        """The aligned chip for the face in ``box``."""
        import dlib

        rect = dlib.rectangle(*_landmark_seed(box))
        predictor = self.model
        with self._call_lock:  # dlib objects are not documented as thread-safe
            shape = predictor(image, rect)  # type: ignore[operator]
            chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.ascontiguousarray(chip, dtype=np.uint8)


def _landmark_seed(box: Box) -> tuple[int, int, int, int]:
    """The square box dlib's landmark model expects, from a CenterFace box.

    dlib's 5-point model was trained on its own detectors' square boxes, which are tighter
    than CenterFace's (no forehead). Measured on lfw10 (103 faces found by both): dlib's side
    is 1.09x CenterFace's width and 0.85x its height, its centre 4% of the height lower.
    """
    cx, cy = box.center
    side = 0.5 * (1.09 * box.width + 0.85 * box.height)
    cy += 0.04 * box.height
    half = side / 2
    return (round(cx - half), round(cy - half), round(cx + half), round(cy + half))


ARCFACE_SIZE = 112
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # eye on the image's left
        [73.5318, 51.5014],  # eye on the image's right
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # mouth corner on the image's left
        [70.7299, 92.2041],  # mouth corner on the image's right
    ],
    dtype=np.float32,
)
"""Where ArcFace-family models (SFace among them) expect the five landmarks in a 112x112
chip; CenterFace gives its landmarks in this order (see :class:`visage.vision.types.Detection`)."""


def arcface_chip(image: RGBImage, landmarks: NDArray[np.float32]) -> RGBImage:
    """The 112x112 chip of ArcFace's 5-point similarity alignment (the least-squares
    similarity transform from ``landmarks`` to :data:`ARCFACE_TEMPLATE`, as OpenCV's
    ``FaceRecognizerSF.alignCrop`` does)."""
    import cv2

    src = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(src, ARCFACE_TEMPLATE, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks (all on one point): a plain resize
        return np.ascontiguousarray(cv2.resize(image, (ARCFACE_SIZE, ARCFACE_SIZE)), dtype=np.uint8)
    chip = cv2.warpAffine(image, matrix, (ARCFACE_SIZE, ARCFACE_SIZE), borderValue=0.0)
    return np.ascontiguousarray(chip, dtype=np.uint8)
