"""1:1 verification: are the main faces of two images the same person? Not gated by
consent (no gallery is searched); nothing but the audit entry is stored."""

from __future__ import annotations

from pydantic import BaseModel

from visage.core import ImageInput, Visage
from visage.errors import FaceNotFoundError
from visage.governance.audit import Actor
from visage.governance.audit_ops import VerifyAudit
from visage.usecases.faces import primary_face
from visage.vision.types import Face


class VerifyResult(BaseModel):
    same: bool
    score: float
    threshold: float


def main_face(core: Visage, image: ImageInput, label: str) -> tuple[Face, str]:
    """The main face of an image and the SHA-256 of the image."""
    loaded = core.load_image(image)
    face = primary_face(core.analyzer.analyze(loaded.pixels), loaded.width, loaded.height)
    if face is None or face.embedding is None:
        raise FaceNotFoundError(f"{loaded.source}: no face found in {label}")
    return face, loaded.sha256


def verify(
    core: Visage,
    image_a: ImageInput,
    image_b: ImageInput,
    actor: Actor | None = None,
    purpose: str | None = None,
) -> VerifyResult:
    a, hash_a = main_face(core, image_a, "the first image")
    b, hash_b = main_face(core, image_b, "the second image")
    assert a.embedding is not None and b.embedding is not None
    score = core.calibration.score(float(a.embedding @ b.embedding))
    result = VerifyResult(
        same=score >= core.threshold, score=round(score, 4), threshold=core.threshold
    )
    # Audited wherever there is a data dir (see Visage.audit_if_initialised).
    core.audit_if_initialised(
        actor or Actor.local(),
        VerifyAudit(
            purpose=purpose,
            input_sha256=[hash_a, hash_b],
            model=core.analyzer.model_fingerprint(),
            threshold=core.threshold,
            same=result.same,
        ),
    )
    return result
