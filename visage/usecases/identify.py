"""1:N identification: every face in an image against the subjects whose unexpired consent
covers the stated purpose. Faces that match nobody are bystanders: their embeddings are
dropped when this call returns and are never stored or logged."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from visage.app import ImageInput, Visage
from visage.gallery import repository as repo
from visage.gallery.matching import calibrate
from visage.governance.consent import normalise_purpose
from visage.usecases.profile import get_profile


class Candidate(BaseModel):
    subject_id: str
    name: str
    score: float


class IdentifiedFace(BaseModel):
    box: list[int]
    candidates: list[Candidate] = Field(description="best first; empty for a bystander")


class IdentifyResult(BaseModel):
    purpose: str
    threshold: float
    faces: list[IdentifiedFace]


def identify(app: Visage, image: ImageInput, purpose: str) -> IdentifyResult:
    purpose = normalise_purpose(purpose)
    get_profile(app).ensure_identification_allowed()
    loaded = app.load_image(image)
    with app.store.session() as session:
        eligible = repo.eligible_subjects(session, purpose)
    faces = app.analyzer.analyze(loaded.pixels)
    out: list[IdentifiedFace] = []
    if faces:
        queries = np.vstack([f.embedding for f in faces if f.embedding is not None])
        hits = app.gallery.search(queries, app.settings.top_k, allowed=eligible.keys())
        for face, face_hits in zip(faces, hits, strict=True):
            candidates = []
            for hit in face_hits:
                score = calibrate(hit.cosine)
                if score >= app.threshold:
                    candidates.append(
                        Candidate(
                            subject_id=hit.label,
                            name=eligible[hit.label],
                            score=round(score, 4),
                        )
                    )
            out.append(IdentifiedFace(box=face.detection.box.as_list(), candidates=candidates))
    return IdentifyResult(purpose=purpose, threshold=app.threshold, faces=out)
