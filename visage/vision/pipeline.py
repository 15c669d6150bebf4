"""The vision pipeline: detect -> align -> measure quality -> embed, for every face."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from visage.vision.align import FaceAligner
from visage.vision.detect import CenterFaceDetector, ScalePolicy
from visage.vision.embed import OnnxEmbedder
from visage.vision.quality import measure
from visage.vision.types import Detection, Face, RGBImage


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    detect_threshold: float = 0.5
    max_side: int = 1280
    min_side: int = 320
    threads: int = 0
    cache_dir: Path | None = None


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
        self.embedder = OnnxEmbedder(self.options.cache_dir, threads=self.options.threads)

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
        vectors = self.embedder.embed(chips)
        return [
            Face(d, q, vectors[i], chips[i])
            for i, (d, q) in enumerate(zip(detections, qualities, strict=True))
        ]
