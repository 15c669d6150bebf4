"""Reference face crops: what enrollers and reviewers see of an enrolled person's face.

Each template keeps the aligned face chip it was computed from, sealed under the subject's
data key (see :mod:`visage.gallery.repository`). Only the roles :data:`POLICY` lists for
``references`` (enroller, reviewer) may open them; they go with their template, and nothing
opens them once the subject's key is destroyed. Enrolment photos themselves are never kept.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from visage.core import Visage
from visage.errors import NotFoundError
from visage.gallery import repository as repo
from visage.governance.access import Principal, UseCase, authorize


class TemplateRef(BaseModel):
    """One template of a subject as the console's subject page shows it."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    template_id: str
    quality: float
    created_at: datetime
    model_id: str
    reference_jpeg: bytes | None = Field(
        description="the aligned face crop (JPEG); none for a template enrolled before "
        "references were kept, or once the subject's key is destroyed"
    )


def template_references(core: Visage, subject_id: str, principal: Principal) -> list[TemplateRef]:
    """A subject's templates with their reference crops, best quality first."""
    authorize(principal, UseCase.references)
    keys = core.keyring
    with core.store.session() as session:
        return [
            TemplateRef(
                template_id=t.id,
                quality=round(t.quality, 3),
                created_at=t.created_at,
                model_id=t.model_id,
                reference_jpeg=repo.reference_of(keys, t),
            )
            for t in repo.templates_of(session, subject_id)
        ]


def reference_image(core: Visage, subject_id: str, template_id: str, principal: Principal) -> bytes:
    """One template's reference crop (JPEG), for serving as an image."""
    authorize(principal, UseCase.references)
    with core.store.session() as session:
        data = repo.reference_of(core.keyring, repo.get_template(session, subject_id, template_id))
    if not data:
        raise NotFoundError(f"template {template_id} has no reference face crop")
    return data


def best_references(core: Visage, subject_id: str, limit: int = 3) -> list[bytes]:
    """Up to ``limit`` reference crops of a subject, best quality first (no role check:
    for use-cases that checked their caller already, such as the review material)."""
    keys = core.keyring
    crops: list[bytes] = []
    with core.store.session() as session:
        for t in repo.templates_of(session, subject_id):
            crop = repo.reference_of(keys, t)
            if crop:
                crops.append(crop)
            if len(crops) == limit:
                break
    return crops
