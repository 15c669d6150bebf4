"""1:N identification: every face in an image against the subjects whose unexpired consent
covers the stated purpose. Faces that match nobody are bystanders: their embeddings are
dropped when this call returns and are never stored or logged — the audit entry counts them.

A match is recorded as an event; for a ``watchlist`` purpose it is instead a candidate
queued for two-person review, with a crop of the probe face (every other face masked) sealed
under the candidate's data key. The caller then learns only ``pending_review`` and the review
id — no subject id, name or score, in the answer or the audit entry — until two reviewers
have confirmed it (:func:`visage.usecases.review.outcome`).

With a law-enforcement operator in a publicly accessible space, each search needs an
authorisation reference (recorded in the audit entry) and the caller's searches per minute
are capped, counted in the audit log so that the CLI (a new process per call) obeys it too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

import cv2
import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from visage.app import ImageInput, Visage
from visage.gallery import repository as repo
from visage.gallery.matching import calibrate
from visage.governance import review as review_gov
from visage.governance.access import owner_of
from visage.governance.audit import Actor
from visage.governance.consent import normalise_purpose
from visage.governance.events import record_event
from visage.governance.profile import DeploymentProfile, GateError, IdentifyRateError
from visage.media.blur import expand, mask_faces
from visage.media.image import RGBImage
from visage.store.schema import AuditEntryRow
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
    candidates: list[Candidate] = Field(
        description="best first; empty for a bystander, and for a `pending_review` face "
        "(the identity is released only after two reviewers confirm it)"
    )
    status: MatchStatus | None = Field(
        default=None,
        description="for a matched face: `match`, or `pending_review` when the purpose is a "
        "watchlist and two reviewers must confirm the best candidate first",
    )
    review_id: str | None = Field(
        default=None, description="for `pending_review`: read the outcome once released"
    )


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


RATE_WINDOW = timedelta(minutes=1)


def _recent_searches(session: Session, actor: Actor, now: datetime) -> int:
    """The actor's 1:N searches (not refusals) in the last minute, from the audit log."""
    stmt = select(func.count()).where(
        AuditEntryRow.operation == "identify",
        AuditEntryRow.actor == actor.id,
        AuditEntryRow.outcome == "ok",
        AuditEntryRow.at >= now - RATE_WINDOW,
    )
    return int(session.scalar(stmt) or 0)


def _gate(
    app: Visage,
    profile: DeploymentProfile,
    actor: Actor,
    purpose: str,
    authorisation_ref: str | None,
) -> None:
    """Refuse (and audit the refusal) what the deployment profile does not allow."""
    refusal = profile.identification_refusal() or profile.authorisation_refusal(authorisation_ref)
    error: GateError | None = GateError(refusal) if refusal else None
    with app.store.session() as session:
        if error is None and profile.post_remote_only:
            ceiling = app.settings.identify_rate_limit_law_enforcement_per_minute
            if _recent_searches(session, actor, datetime.now(UTC)) >= ceiling:
                error = IdentifyRateError(
                    f"more than {ceiling} 1:N searches a minute by a law-enforcement "
                    "operator in a public space; frames one by one are not allowed to "
                    "amount to live identification"
                )
        if error is not None:
            app.audit(
                session,
                actor,
                "identify",
                purpose=purpose,
                outcome="refused",
                reason=error.message,
                **({"authorisation_ref": authorisation_ref} if authorisation_ref else {}),
            )
    if error is not None:
        raise error


def identify(
    app: Visage,
    image: ImageInput,
    purpose: str,
    actor: Actor | None = None,
    *,
    authorisation_ref: str | None = None,
) -> IdentifyResult:
    purpose = normalise_purpose(purpose)
    actor = actor or Actor.local()
    authorisation_ref = authorisation_ref.strip() if authorisation_ref else None
    profile = get_profile(app)
    _gate(app, profile, actor, purpose, authorisation_ref)
    watchlist = profile.is_watchlist(purpose)
    loaded = app.load_image(image)
    with app.store.session() as session:
        eligible = app.eligibility.get(session, purpose)
    faces = app.analyzer.analyze(loaded.pixels)
    out: list[IdentifiedFace] = []
    if faces:
        queries = np.vstack([f.embedding for f in faces if f.embedding is not None])
        hits = app.gallery.search(queries, app.settings.top_k, allowed=eligible.ids)
        scored = [
            [(h.label, score) for h in face_hits if (score := calibrate(h.cosine)) >= app.threshold]
            for face_hits in hits
        ]
        names: dict[str, str] = {}
        if not watchlist:  # a watchlist candidate's name is opened only on release
            with app.store.session() as session:
                wanted = {label for face_hits in scored for label, _ in face_hits}
                names = repo.subject_names(session, app.keyring, wanted)
        for face, face_hits in zip(faces, scored, strict=True):
            candidates = [
                Candidate(subject_id=label, name=names.get(label, ""), score=round(score, 4))
                for label, score in face_hits
            ]
            out.append(IdentifiedFace(box=face.detection.box.as_list(), candidates=candidates))
    matched = [i for i, f in enumerate(out) if f.candidates]
    with app.store.session() as session:
        matched_subjects = []
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
                        requested_by=actor.id,
                        requester_owner=owner_of(session, actor.id),
                    ),
                    probe_crop(loaded.pixels, faces, i),
                )
                # Blind until released: the caller keeps only the review id.
                out[i] = IdentifiedFace(
                    box=out[i].box,
                    candidates=[],
                    status=MatchStatus.pending_review,
                    review_id=item.id,
                )
            else:
                record_event(
                    session,
                    subject_id=best.subject_id,
                    purpose=purpose,
                    source="identify",
                    best_score=best.score,
                )
                out[i].status = MatchStatus.match
                matched_subjects.append(best.subject_id)
        extra = {"authorisation_ref": authorisation_ref} if authorisation_ref else {}
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
            matched_subjects=matched_subjects,
            reviews=[out[i].review_id for i in matched if out[i].review_id],
            **extra,
        )
    return IdentifyResult(purpose=purpose, threshold=app.threshold, faces=out)
