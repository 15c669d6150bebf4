"""Embedding: dlib's ResNet (``dlib_face_recognition_resnet_model_v1``) on aligned chips.

Vectors are L2-normalised so that the dot product of two templates is their cosine
similarity, the score that :mod:`visage.gallery.matching` calibrates.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from visage.media.image import RGBImage
from visage.vision.model import LazyModel, file_sha256, package_file

EMBEDDING_DIM = 128


class DlibEmbedder(LazyModel[object]):
    """128-d face descriptors from 150x150 aligned chips."""

    name = "dlib-resnet-v1"

    def __init__(self) -> None:
        super().__init__()
        self.path = package_file(
            "face_recognition_models",
            "models/dlib_face_recognition_resnet_model_v1.dat",
            pip_name="face_recognition_models",
        )
        self._call_lock = threading.Lock()

    def _load(self) -> object:
        import dlib

        return dlib.face_recognition_model_v1(str(self.path))

    @property
    def fingerprint(self) -> str:
        return file_sha256(self.path)

    def embed(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]:
        """One unit-length row per chip, shape (len(chips), 128)."""
        if not chips:
            return np.empty((0, EMBEDDING_DIM), np.float32)
        net = self.model
        with self._call_lock:
            raw = net.compute_face_descriptor(list(chips))  # type: ignore[attr-defined]
        vectors = np.asarray([np.asarray(v) for v in raw], dtype=np.float32)
        return normalize(vectors)


def normalize(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
