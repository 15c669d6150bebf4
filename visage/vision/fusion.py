"""Score-level fusion of two embedders, as one embedder like any other.

The fused template of a face is the concatenation of the two models' unit vectors, scaled by
``sqrt(w)`` and ``sqrt(1 - w)``::

    t = [sqrt(w) * a, sqrt(1 - w) * b]        |t| = 1

so the inner product of two fused templates is exactly ``w * cos_a + (1 - w) * cos_b``: a
weighted-sum score fusion, computed by the same index, calibration and thresholds as any
single model (the index scores by inner product of unit vectors). A logistic calibration on
that cosine, ``sigmoid(s * (w cos_a + (1 - w) cos_b) + c)``, is a two-feature logistic
fusion with coefficients ``s w`` and ``s (1 - w)``: fitting the two-feature model on
labelled pairs gives ``w`` (see :func:`visage.gallery.matching.fit_fusion`).

``w`` is part of the embedding space: templates made with another weight are another model,
so the fused model id names both parts and the weight (``dlib-resnet-v1+sface-…@0.40``),
and moving to another weight is a migration like moving to another model.

Each part is fed the chip its own alignment needs (:func:`embed_aligned`): for dlib + SFace,
dlib's 150x150 chip and ArcFace's 112x112 chip of the same face.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from visage.vision.spec import DLIB_ID, SFACE_ID, Alignment, Embedder, EmbedderSpec
from visage.vision.types import RGBImage

FUSION_WEIGHTS: dict[tuple[str, str], float] = {(DLIB_ID, SFACE_ID): 0.13}
"""The weight of the first part for pairs calibrated by Visage (on lfw10, see
:data:`visage.gallery.matching.DLIB_SFACE`); any other pair gets :data:`DEFAULT_WEIGHT`
until it is calibrated (``visage eval --calibrate`` reports the fitted weight)."""

DEFAULT_WEIGHT = 0.5


def fused_id(first: str, second: str, weight: float) -> str:
    """The model id of a fusion: both part ids and the weight (two decimals), which together
    name one embedding space."""
    return f"{first}+{second}@{weight:.2f}"


class FusedEmbedder:
    """Two embedders, one template: see the module docstring. ``weight``: the first part's
    share of the fused cosine, in (0, 1)."""

    def __init__(self, first: Embedder, second: Embedder, weight: float) -> None:
        if not 0.0 < weight < 1.0:
            raise ValueError(f"a fusion weight lies strictly between 0 and 1, not {weight}")
        self.parts: tuple[Embedder, Embedder] = (first, second)
        self.weight = round(weight, 2)
        self.name = fused_id(first.name, second.name, self.weight)
        self.spec = EmbedderSpec(
            alignment=first.spec.alignment, dim=first.spec.dim + second.spec.dim
        )
        """Its dimension is the parts' together; ``alignment`` is the first part's only (a
        fusion needs :attr:`alignments`: feed it with :func:`embed_aligned`)."""
        self._scales = (math.sqrt(self.weight), math.sqrt(1.0 - self.weight))

    @property
    def alignments(self) -> tuple[Alignment, ...]:
        return tuple(dict.fromkeys(p.spec.alignment for p in self.parts))

    @property
    def fingerprint(self) -> str:
        """Covers both parts' weight files and the weight."""
        h = hashlib.sha256()
        for part in self.parts:
            h.update(part.fingerprint.encode() + b"|")
        h.update(f"{self.weight:.2f}".encode())
        return h.hexdigest()

    @property
    def model(self) -> object:
        """Both parts' loaded models (loading them)."""
        return tuple(p.model for p in self.parts)

    def embed_parts(self, chips: Mapping[str, Sequence[RGBImage]]) -> NDArray[np.float32]:
        """One fused unit row per face; ``chips[alignment]``: each part's aligned chips of the
        same faces, in the same order."""
        rows = [
            scale * embed_aligned(part, chips)
            for part, scale in zip(self.parts, self._scales, strict=True)
        ]
        return np.ascontiguousarray(np.concatenate(rows, axis=1), dtype=np.float32)

    def embed(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]:
        """For parts that share one alignment only; otherwise use :func:`embed_aligned`."""
        if len(self.alignments) != 1:
            raise ValueError(
                f"{self.name} needs {' and '.join(self.alignments)} chips: use embed_aligned"
            )
        return self.embed_parts({self.alignments[0]: chips})

    def split(self, vectors: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        """Each part's unit vectors back from fused templates (rows)."""
        cut = self.parts[0].spec.dim
        a, b = vectors[:, :cut], vectors[:, cut:]
        return (a / self._scales[0]).astype(np.float32), (b / self._scales[1]).astype(np.float32)


def alignments_of(embedder: Embedder) -> tuple[Alignment, ...]:
    """The aligned chips ``embedder`` needs of each face."""
    if isinstance(embedder, FusedEmbedder):
        return embedder.alignments
    return (embedder.spec.alignment,)


def embed_aligned(
    embedder: Embedder, chips: Mapping[str, Sequence[RGBImage]]
) -> NDArray[np.float32]:
    """The templates of faces given as their chips per alignment (at least those
    :func:`alignments_of` names)."""
    if isinstance(embedder, FusedEmbedder):
        return embedder.embed_parts(chips)
    return embedder.embed(chips[embedder.spec.alignment])
