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

from enum import StrEnum

import numpy as np
from pydantic import BaseModel, Field

from visage.core import ImageInput, Visage
from visage.gallery import repository as repo
from visage.governance import review as review_gov
from visage.governance.access import owner_of
from visage.governance.audit import Actor
from visage.governance.audit_ops import IdentifyAudit
from visage.governance.events import record_event
from visage.media.annotate import Label, annotate
from visage.media.crops import probe_crop
from visage.usecases import review as review_uc
from visage.usecases.matching import MatchOperation, PurposeMatcher
from visage.usecases.review import Outcome
from visage.vision.types import Box


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


def identify(
    core: Visage,
    image: ImageInput,
    purpose: str,
    actor: Actor | None = None,
    *,
    authorisation_ref: str | None = None,
) -> IdentifyResult:
    matcher = PurposeMatcher(
        core,
        purpose,
        actor or Actor.local(),
        MatchOperation.identify,
        authorisation_ref=authorisation_ref,
    )
    matcher.check_gate()
    purpose, actor, watchlist = matcher.purpose, matcher.actor, matcher.watchlist
    loaded = core.load_image(image)
    faces = core.analyzer.analyze(loaded.pixels)
    out: list[IdentifiedFace] = []
    if faces:
        queries = np.vstack([f.embedding for f in faces if f.embedding is not None])
        found = matcher.candidates(queries, core.settings.top_k)
        names: dict[str, str] = {}
        if not watchlist:  # a watchlist candidate's name is opened only on release
            with core.store.session() as session:
                wanted = {m.subject_id for face_hits in found for m in face_hits}
                names = repo.subject_names(session, core.keyring, wanted)
        for face, face_hits in zip(faces, found, strict=True):
            candidates = [
                Candidate(
                    subject_id=m.subject_id,
                    name=names.get(m.subject_id, ""),
                    score=round(m.score, 4),
                )
                for m in face_hits
            ]
            out.append(IdentifiedFace(box=face.detection.box.as_list(), candidates=candidates))
    matched = [i for i, f in enumerate(out) if f.candidates]
    with core.store.session() as session:
        matched_subjects = []
        for i in matched:
            best = out[i].candidates[0]
            if watchlist:
                item = review_gov.open_review(
                    session,
                    core.keyring,
                    review_gov.Candidate(
                        subject_id=best.subject_id,
                        purpose=purpose,
                        score=best.score,
                        threshold=core.threshold,
                        quality=round(faces[i].quality.score, 3),
                        source="identify",
                        requested_by=actor.id,
                        requester_owner=owner_of(session, actor.id),
                    ),
                    probe_crop(
                        loaded.pixels,
                        faces[i].detection.box,
                        [f.detection.box for j, f in enumerate(faces) if j != i],
                    ),
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
        core.audit(
            session,
            actor,
            IdentifyAudit(
                purpose=purpose,
                input_sha256=loaded.sha256,
                model=core.analyzer.model_fingerprint(),
                threshold=core.threshold,
                gallery=repo.gallery_digest(session),
                faces=len(out),
                matches=len(matched),
                bystanders=len(out) - len(matched),
                matched_subjects=matched_subjects,
                reviews=[r for i in matched if (r := out[i].review_id)],
                authorisation_ref=matcher.authorisation_ref,
            ),
        )
    return IdentifyResult(purpose=purpose, threshold=core.threshold, faces=out)


class AnnotatedIdentify(BaseModel):
    """A search's answer with the picture an operator may see: every face that is not a
    released match masked, matches outlined and labelled ``n: name score``, faces awaiting
    review outlined and labelled ``n`` only (their face stays masked until release)."""

    result: IdentifyResult
    jpeg: bytes = Field(description="the annotated picture (JPEG, no metadata of the input)")
    numbers: list[int | None] = Field(
        description="per face of ``result.faces``: its number in the picture (None: masked)"
    )
    bystanders: int = Field(description="faces that matched nobody, masked and not described")


def identify_annotated(
    core: Visage,
    image: ImageInput,
    purpose: str,
    actor: Actor | None = None,
    *,
    authorisation_ref: str | None = None,
) -> AnnotatedIdentify:
    """:func:`identify` (same gates, audit and blind review), then the annotated picture."""
    result = identify(core, image, purpose, actor, authorisation_ref=authorisation_ref)
    loaded = core.load_image(image)
    labels: list[Label] = []
    masked: list[Box] = []
    numbers: list[int | None] = []
    for face in result.faces:
        box = Box(*(float(v) for v in face.box))
        if face.status is MatchStatus.match and face.candidates:
            best = face.candidates[0]
            numbers.append(len(labels) + 1)
            labels.append(Label(box, f"{len(labels) + 1}: {best.name} {best.score:.3f}"))
            continue
        masked.append(box)  # a bystander, or a candidate still blind until two reviewers
        if face.status is MatchStatus.pending_review:
            numbers.append(len(labels) + 1)
            labels.append(Label(box, f"{len(labels) + 1}", pending=True))
        else:
            numbers.append(None)
    return AnnotatedIdentify(
        result=result,
        jpeg=annotate(loaded.pixels, labels, masked),
        numbers=numbers,
        bystanders=sum(1 for f in result.faces if f.status is None),
    )


class PendingOutcome(BaseModel):
    """A watchlist search's review, not (or not yet) released: its state, no identity."""

    id: str
    status: review_gov.Status


def search_outcome(core: Visage, review_id: str, actor: Actor) -> Outcome | PendingOutcome:
    """The released identity of a review this actor asked for
    (:func:`visage.usecases.review.outcome`: same access check, audited), or, while it is
    pending or after a rejection (a 409 there), only its state — for a page that says
    "awaiting two reviewers" instead of an error."""
    try:
        return review_uc.outcome(core, review_id, actor)
    except review_gov.ReviewConflictError:  # the access check passed before the conflict
        with core.store.session() as session:
            row = review_gov.get_review(session, review_id)
            return PendingOutcome(id=row.id, status=review_gov.Status(row.status))
