"""The vision pipeline: detect -> align -> measure quality -> embed, for every face.

Every face is aligned to dlib's 150x150 chip (quality, and the reference crop enrolment
keeps); an embedder trained on ArcFace's 112x112 alignment gets that chip as well, made
from the detector's five landmarks, and a fusion of two models gets each the chip its
alignment needs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visage.vision.align import FaceAligner, arcface_chip
from visage.vision.detect import CenterFaceDetector, ScalePolicy
from visage.vision.embedders import DEFAULT_EMBEDDER, Embedder, make_embedder
from visage.vision.fusion import alignments_of, embed_aligned
from visage.vision.quality import measure
from visage.vision.types import Detection, Embedding, Face, RGBImage


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    detect_threshold: float = 0.5
    max_side: int = 1280
    min_side: int = 320
    threads: int = 0
    cache_dir: Path | None = None
    embedder: str = DEFAULT_EMBEDDER
    """``dlib-resnet``, ``sface``, ``onnx:/path/model.onnx``, or two fused as ``A+B`` (see
    :mod:`.embedders`)."""


class FaceAnalyzer:
    """Finds and describes faces. Models load on first use and are shared by all threads."""

    def __init__(self, options: PipelineOptions | None = None) -> None:
        self.options = options or PipelineOptions()
        self.detector = CenterFaceDetector(
            ScalePolicy(max_side=self.options.max_side, min_side=self.options.min_side),
            threads=self.options.threads,
            cache_dir=self.options.cache_dir,
        )
        self.aligner = FaceAligner()
        self.embedder: Embedder = make_embedder(
            self.options.embedder, self.options.cache_dir, threads=self.options.threads
        )

    @property
    def model_id(self) -> str:
        """Identifies the embedding space: templates from another model are not comparable."""
        return self.embedder.name

    def model_fingerprint(self) -> str:
        """A hash over every model file in the pipeline, for audit records."""
        h = hashlib.sha256()
        for part in (self.detector, self.aligner, self.embedder):
            h.update(part.fingerprint.encode())
        return h.hexdigest()

    def analyze(self, image: RGBImage, *, embed: bool = True) -> list[Face]:
        """Every face in ``image``, largest first, with quality and (optionally) embedding."""
        detections = self.detector.detect(image, self.options.detect_threshold)
        return self.describe(image, detections, embed=embed)

    def describe(
        self, image: RGBImage, detections: list[Detection], *, embed: bool = True
    ) -> list[Face]:
        """Quality (and optionally embedding) for faces already detected in ``image``."""
        if not detections:
            return []
        chips = [self.aligner.chip(image, d.box) for d in detections]
        qualities = [measure(d, c) for d, c in zip(detections, chips, strict=True)]
        if not embed:
            return [Face(d, q) for d, q in zip(detections, qualities, strict=True)]
        inputs: dict[str, list[RGBImage]] = {"dlib150": chips}
        if "arcface112" in alignments_of(self.embedder):
            inputs["arcface112"] = [arcface_chip(image, d.landmarks) for d in detections]
        vectors = embed_aligned(self.embedder, inputs)
        # ``chip`` stays dlib's 150x150 chip whatever the embedder: it is what quality is
        # measured on and what enrolment seals as the reference crop, so that a gallery can
        # be moved to any model later (see :meth:`embed_reference`).
        return [
            Face(d, q, vectors[i], chips[i])
            for i, (d, q) in enumerate(zip(detections, qualities, strict=True))
        ]

    def embed_reference(self, chip: RGBImage) -> Embedding | None:
        """The active model's template for a reference crop (dlib's 150x150 chip, as kept at
        enrolment): the chip itself for a ``dlib150`` model; for an ``arcface112`` model the
        chip's face is found again (the detector on the chip) and aligned from its five
        landmarks; a fusion gets both. None when no face is found in the chip."""
        inputs: dict[str, list[RGBImage]] = {"dlib150": [chip]}
        if "arcface112" in alignments_of(self.embedder):
            found = self.detector.detect(chip, min(self.options.detect_threshold, 0.3))
            if not found:
                return None
            middle = np.array(chip.shape[1::-1], np.float32) / 2
            nearest = min(found, key=lambda d: float(np.abs(np.array(d.box.center) - middle).sum()))
            inputs["arcface112"] = [arcface_chip(chip, nearest.landmarks)]
        vector: Embedding = embed_aligned(self.embedder, inputs)[0]
        return vector
