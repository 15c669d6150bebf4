"""Enrolment: one template per image, only for a subject with a valid consent record.

An image is rejected, with a reason and a machine-readable :class:`RejectCode` (which a
console translates), when it cannot be read, shows no face, shows more than one face large
enough to matter, or its face is too small, turned away or blurred; or when its face is not
the person of the subject's other photos (:data:`SAME_PERSON_FMR`): one subject is one
person with their own consent record, so a folder of many people's photos cannot be
imported under one consent. Photos are never kept:
only the sealed template and its reference crop (the aligned face chip the template was
computed from, JPEG, sealed under the subject's data key: what a reviewer compares a probe
with; see :mod:`visage.usecases.references`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from visage.core import ImageInput, Visage
from visage.errors import (
    ConsentError,
    ImageTooLargeError,
    InputError,
    UploadTooLargeError,
    VisageError,
)
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.audit_ops import EnrollAudit
from visage.media.crops import reference_crop
from visage.vision.quality import weakest
from visage.vision.types import Face

MIN_QUALITY = 0.35
"""Quality score below which a face is refused for enrolment (see vision.quality)."""

MAX_YAW = 0.45

SAME_PERSON_FMR = 1e-2
"""The false-match rate of the same-person check: a new photo must match one of the
subject's templates (or of the photos accepted before it in the same request) at the
calibrated threshold for this rate. Looser than 1:N matching (1e-3), because refusing a
true photo of the person costs a retake, while a stranger let in costs a consent."""


class RejectCode(StrEnum):
    """Why a photo was not enrolled, for a door to translate (``reason`` is the English)."""

    unreadable = "unreadable"  # not an image, truncated, unsupported format
    too_large = "too_large"  # more bytes or pixels than the configured limits
    no_face = "no_face"
    several_faces = "several_faces"
    too_small = "too_small"
    turned_away = "turned_away"
    blurred = "blurred"
    consent = "consent"  # no valid consent record (any more)
    other_person = "other_person"  # not the person of the subject's other photos
    other = "other"


class NotEnrolableError(InputError):
    """A photo that cannot make a reliable template; ``code`` says why."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Enrolled(BaseModel):
    image: str
    template_id: str
    quality: float


class Rejected(BaseModel):
    image: str
    code: RejectCode
    reason: str


class EnrollReport(BaseModel):
    subject_id: str
    enrolled: list[Enrolled]
    rejected: list[Rejected]


class NothingEnrolledError(InputError):
    """No photo of a request could be enrolled; the message and ``problem_extensions``
    (``rejected``: each photo's code and reason) say why, photo by photo."""

    def __init__(self, report: EnrollReport) -> None:
        reasons = "; ".join(f"{r.image}: {r.reason}" for r in report.rejected)
        super().__init__(f"no photo enrolled ({reasons or 'no photo given'})")
        self.report = report
        self.problem_extensions: dict[str, object] = {
            "rejected": [r.model_dump(mode="json") for r in report.rejected]
        }


def require_enrolled(report: EnrollReport) -> EnrollReport:
    """``report`` if at least one photo was enrolled, else :class:`NothingEnrolledError`
    (a request whose every photo was rejected failed, and says so, as HTTP 422)."""
    if not report.enrolled:
        raise NothingEnrolledError(report)
    return report


def reject_code(error: VisageError) -> RejectCode:
    """The code for an error raised while enrolling one photo."""
    if isinstance(error, NotEnrolableError):
        return error.code
    if isinstance(error, ConsentError):
        return RejectCode.consent
    if isinstance(error, ImageTooLargeError | UploadTooLargeError):
        return RejectCode.too_large
    if isinstance(error, InputError):
        return RejectCode.unreadable
    return RejectCode.other


_LOW_QUALITY_CODE = {
    "size": RejectCode.too_small,
    "sharpness": RejectCode.blurred,
    "pose": RejectCode.turned_away,
}


def _label(image: ImageInput, index: int) -> str:
    return f"upload #{index + 1}" if isinstance(image, bytes) else str(image)


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
"""The files of a folder that ``enroll ID DIR`` takes (the content is sniffed later)."""


def images_in(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each folder replaced by its image files (top level, by suffix, in
    name order). Subfolders are not entered: a folder is one person's photos. A folder
    with no image is bad input, not a silent no-op."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise InputError(f"{path}: no image file in this folder ({suffixes})")
        found.extend(files)
    return found


def check_enrolable(faces: list[Face], min_face_px: int) -> Face:
    """The one usable face, or a :class:`NotEnrolableError` saying why there is none."""
    if not faces:
        raise NotEnrolableError(RejectCode.no_face, "no face found")
    relevant = [f for f in faces if f.detection.box.width >= min_face_px]
    if len(relevant) > 1:
        raise NotEnrolableError(
            RejectCode.several_faces,
            f"{len(relevant)} faces found; an enrolment photo must show one person",
        )
    face = relevant[0] if relevant else faces[0]
    q = face.quality
    if face.detection.box.width < min_face_px:
        raise NotEnrolableError(
            RejectCode.too_small,
            f"face too small ({face.detection.box.width:.0f} px wide, minimum {min_face_px})",
        )
    if abs(q.yaw) > MAX_YAW:
        raise NotEnrolableError(
            RejectCode.turned_away, f"face turned too far from the camera (yaw {q.yaw:+.2f})"
        )
    if q.score < MIN_QUALITY:
        raise NotEnrolableError(
            _LOW_QUALITY_CODE[weakest(q)],
            f"face quality too low ({q.score:.2f} < {MIN_QUALITY}; sharpness {q.sharpness:.0f})",
        )
    return face


def _same_person_threshold(core: Visage) -> float:
    fitted = core.calibration.threshold_for(SAME_PERSON_FMR)
    return core.threshold if fitted is None else min(fitted, core.threshold)


def check_same_person(
    core: Visage,
    embedding: NDArray[np.float32],
    known: Sequence[NDArray[np.float32]],
    threshold: float,
) -> None:
    """Nothing when the subject has no template yet or ``embedding`` matches one of
    ``known`` (calibrated score, as 1:1 verify scores) at ``threshold``; else
    :class:`NotEnrolableError` (``other_person``)."""
    if not known:
        return
    cosines = np.stack(list(known)) @ embedding
    best = float(core.calibration.scores(cosines.astype(np.float32)).max())
    if best < threshold:
        raise NotEnrolableError(
            RejectCode.other_person,
            f"this face is not the person of the subject's other photos (similarity "
            f"{best:.2f} < {threshold:.2f}); one subject is one person: enrol someone else "
            "as their own subject, with their own consent record",
        )


def enroll(
    core: Visage,
    subject_id: str,
    images: Sequence[ImageInput],
    progress: Callable[[int], None] | None = None,
    actor: Actor | None = None,
) -> EnrollReport:
    report = EnrollReport(subject_id=subject_id, enrolled=[], rejected=[])
    with core.store.session() as session:
        subject = repo.get_subject(session, subject_id)
        if not repo.has_valid_consent(subject):
            raise ConsentError(f"subject {subject_id} has no valid consent record; cannot enrol")
        known = repo.subject_vectors(session, core.keyring, subject_id, core.analyzer.model_id)
    same_person = _same_person_threshold(core)
    for i, image in enumerate(images):
        label = _label(image, i)
        try:
            loaded = core.load_image(image)
            face = check_enrolable(core.analyzer.analyze(loaded.pixels), core.settings.min_face_px)
            assert face.embedding is not None
            check_same_person(core, face.embedding, known, same_person)
            reference = reference_crop(face.chip) if face.chip is not None else None
            with core.store.session() as session:
                subject = repo.get_subject(session, subject_id)
                template_id = repo.add_template(
                    session,
                    core.keyring,
                    subject,
                    face.embedding,
                    model_id=core.analyzer.model_id,
                    quality=face.quality.score,
                    reference_jpeg=reference,
                )
                version = repo.gallery_version(session)
                core.audit(
                    session,
                    actor or Actor.local(),
                    EnrollAudit(
                        subject_id=subject_id,
                        template_id=template_id,
                        input_sha256=loaded.sha256,
                        model=core.analyzer.model_fingerprint(),
                        quality=round(face.quality.score, 3),
                        gallery=repo.gallery_digest(session),
                    ),
                )
            core.gallery.added(subject_id, face.embedding, version)
            known.append(face.embedding)
            report.enrolled.append(
                Enrolled(image=label, template_id=template_id, quality=round(face.quality.score, 3))
            )
        except VisageError as exc:
            reason = exc.message.removeprefix(f"{label}: ")
            report.rejected.append(Rejected(image=label, code=reject_code(exc), reason=reason))
        if progress is not None:
            progress(i + 1)
    return report
