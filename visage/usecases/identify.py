"""1:N identification: every face in an image against the subjects whose unexpired consent
covers the stated purpose. Faces that match nobody are bystanders: their embeddings are
dropped when this call returns and are never stored or logged — the audit entry counts them.

A match is recorded as an event; for a ``watchlist`` purpose it is instead a candidate
queued for two-person review, with a crop of the probe face (every other face masked) sealed
under the candidate's data key.
"""

from __future__ import annotations

from enum import StrEnum

import cv2
import numpy as np
from pydantic import BaseModel, Field

from visage.app import ImageInput, Visage
from visage.gallery import repository as repo
from visage.gallery.matching import calibrate
from visage.governance import review as review_gov
from visage.governance.audit import Actor
from visage.governance.consent import normalise_purpose
from visage.governance.events import record_event
from visage.governance.profile import GateError
from visage.media.blur import expand, mask_faces
from visage.media.image import RGBImage
from visage.usecases.profile import get_profile
from visage.vision.types import Face


class MatchStatus(StrEnum):
    match = "match"
    pending_review = "pending_review"


class Candidate(BaseModel):
    subject_id: str
    name: str
    score: float


class IdentifiedFace(BaseModel):
    box: list[int]
    candidates: list[Candidate] = Field(description="best first; empty for a bystander")
    status: MatchStatus | None = Field(
        default=None,
        description="for a face with candidates: `match`, or `pending_review` when the "
        "purpose is a watchlist and two reviewers must confirm the best candidate first",
    )
    review_id: str | None = None


class IdentifyResult(BaseModel):
    purpose: str
    threshold: float
    faces: list[IdentifiedFace]


def probe_crop(pixels: RGBImage, faces: list[Face], index: int) -> bytes:
    """JPEG of face ``index`` with a margin, every other face in the frame masked first."""
    canvas = pixels.copy()
    mask_faces(canvas, [f.detection.box for i, f in enumerate(faces) if i != index])
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = expand(faces[index].detection.box, 0.4, w, h)
    crop = cv2.cvtColor(canvas[y0:y1, x0:x1], cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return jpeg.tobytes() if ok else b""


def identify(
    app: Visage,
    image: ImageInput,
    purpose: str,
    actor: Actor | None = None,
) -> IdentifyResult:
    purpose = normalise_purpose(purpose)
    actor = actor or Actor.local()
    profile = get_profile(app)
    refusal = profile.identification_refusal()
    if refusal is not None:
        with app.store.session() as session:
            app.audit(
                session, actor, "identify", purpose=purpose, outcome="refused", reason=refusal
            )
        raise GateError(refusal)
    watchlist = profile.is_watchlist(purpose)
    loaded = app.load_image(image)
    with app.store.session() as session:
        eligible = app.eligibility.get(session, purpose)
    faces = app.analyzer.analyze(loaded.pixels)
    out: list[IdentifiedFace] = []
    if faces:
        queries = np.vstack([f.embedding for f in faces if f.embedding is not None])
        hits = app.gallery.search(queries, app.settings.top_k, allowed=eligible.ids)
        with app.store.session() as session:  # names are sealed: open only the candidates'
            names = repo.subject_names(session, app.keyring, {h.label for fh in hits for h in fh})
        for face, face_hits in zip(faces, hits, strict=True):
            candidates = [
                Candidate(subject_id=h.label, name=names.get(h.label, ""), score=round(score, 4))
                for h in face_hits
                if (score := calibrate(h.cosine)) >= app.threshold
            ]
            out.append(IdentifiedFace(box=face.detection.box.as_list(), candidates=candidates))
    matched = [i for i, f in enumerate(out) if f.candidates]
    with app.store.session() as session:
        for i in matched:
            best = out[i].candidates[0]
            if watchlist:
                item = review_gov.open_review(
                    session,
                    app.keyring,
                    review_gov.Candidate(
                        subject_id=best.subject_id,
                        purpose=purpose,
                        score=best.score,
                        threshold=app.threshold,
                        quality=round(faces[i].quality.score, 3),
                        source="identify",
                    ),
                    probe_crop(loaded.pixels, faces, i),
                )
                out[i].status, out[i].review_id = MatchStatus.pending_review, item.id
            else:
                record_event(
                    session,
                    subject_id=best.subject_id,
                    purpose=purpose,
                    source="identify",
                    best_score=best.score,
                )
                out[i].status = MatchStatus.match
        app.audit(
            session,
            actor,
            "identify",
            purpose=purpose,
            input_sha256=loaded.sha256,
            model=app.analyzer.model_fingerprint(),
            threshold=app.threshold,
            gallery=repo.gallery_digest(session),
            faces=len(out),
            matches=len(matched),
            bystanders=len(out) - len(matched),
            matched_subjects=[out[i].candidates[0].subject_id for i in matched],
            reviews=[out[i].review_id for i in matched if out[i].review_id],
        )
    return IdentifyResult(purpose=purpose, threshold=app.threshold, faces=out)
