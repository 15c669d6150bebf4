"""Moving a gallery to another embedding model without photographing anyone again.

``migrate`` re-embeds every template of another model from its sealed reference crop (dlib's
150x150 aligned chip, kept at enrolment): for a ``dlib150`` model the chip is embedded as it
is; for an ``arcface112`` model (SFace) the face is found again in the chip and aligned from
its five landmarks. Each new template is stored with a copy of the reference crop (so that a
later migration can start from it too) in the same transaction that records its source as
done, so an interrupted run resumes where it stopped: templates already made are skipped.
The old templates stay, and searches keep using the active model, until ``confirm`` makes
the new model active (``meta`` ``active_model``) and deletes the old templates. Both steps
are audited (``model.migrate``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import select

from visage.core import ACTIVE_MODEL, Visage
from visage.errors import InputError, VisageError
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.audit_ops import ModelMigrateAudit
from visage.store.meta import get_meta, put_meta
from visage.store.schema import Meta, SubjectRow, TemplateRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from visage.vision.pipeline import FaceAnalyzer

ProgressFn = Callable[[int, int], None]


class MigrationReport(BaseModel):
    target: str
    """The embedder setting migrated to (``sface``, ``onnx:/path``)."""
    target_model: str
    """Its model id, the one the new templates carry."""
    source_templates: int
    templates_made: int
    templates_skipped: int
    """Made by an earlier, interrupted run."""
    without_reference: int
    """Templates enrolled before reference crops were kept: their subjects need new photos."""
    no_face: list[str]
    """Template ids whose reference crop the new model's alignment found no face in."""
    no_consent: int
    """Templates of subjects with no consent in force (nothing new is made for them)."""
    confirmed: bool = False
    templates_deleted: int = 0
    subjects_without_template: list[str] = []
    """After a confirm: subjects left with no template of the active model."""


def _progress_key(model_id: str) -> str:
    return f"model_migration:{model_id}"


def _target(core: Visage, to: str) -> tuple[str, str]:
    from visage.vision.embedders import check_name, model_id_of

    try:
        setting = check_name(to)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    return setting, model_id_of(setting)


def migrate(
    core: Visage, to: str, progress: ProgressFn | None = None, actor: Actor | None = None
) -> MigrationReport:
    """Make a template of model ``to`` from the reference crop of every template of another
    model (resumable; see the module docstring)."""
    from visage.vision.pipeline import FaceAnalyzer

    setting, target_id = _target(core, to)
    target = FaceAnalyzer(dataclasses.replace(core.analyzer.options, embedder=setting))
    target.detector = core.analyzer.detector  # the same detector: share its loaded model
    with core.store.session() as session:
        done: set[str] = set(json.loads(get_meta(session, _progress_key(target_id)) or b"[]"))
        stmt = select(TemplateRow.id, TemplateRow.subject_id).where(
            TemplateRow.model_id != target_id
        )
        todo = [(tid, sid) for tid, sid in session.execute(stmt)]
    report = MigrationReport(
        target=setting,
        target_model=target_id,
        source_templates=len(todo),
        templates_made=0,
        templates_skipped=0,
        without_reference=0,
        no_face=[],
        no_consent=0,
    )
    for i, (template_id, subject_id) in enumerate(todo):
        if template_id in done:
            report.templates_skipped += 1
        else:
            _migrate_one(core, target, template_id, subject_id, report)
        if progress is not None:
            progress(i + 1, len(todo))
    with core.store.session() as session:
        core.audit(
            session,
            actor or Actor.local(),
            ModelMigrateAudit(
                step="embed",
                source=",".join(sorted(_source_models(session, target_id))) or "-",
                target=target_id,
                target_fingerprint=target.embedder.fingerprint,
                templates_made=report.templates_made,
                templates_skipped=report.templates_skipped,
                without_reference=report.without_reference,
                templates_deleted=0,
                gallery=repo.gallery_digest(session),
            ),
        )
    return report


def _migrate_one(
    core: Visage, target: FaceAnalyzer, template_id: str, subject_id: str, report: MigrationReport
) -> None:
    from visage.media.image import decode_image

    keys = core.keyring
    with core.store.session() as session:
        row = session.get(TemplateRow, template_id)
        if row is None:  # deleted meanwhile
            return
        try:
            crop = repo.reference_of(keys, row)
        except VisageError:
            crop = None
        if crop is None:
            report.without_reference += 1
            return
        subject = repo.get_subject(session, subject_id)
        if not repo.has_valid_consent(subject):
            report.no_consent += 1
            return
        chip = decode_image(crop, max_pixels=1_000_000, max_bytes=1_000_000, source="reference")
        vector = target.embed_reference(chip.pixels)
        key = _progress_key(target.model_id)
        done = set(json.loads(get_meta(session, key) or b"[]"))
        if vector is None:
            report.no_face.append(template_id)
            return
        repo.add_template(
            session,
            keys,
            subject,
            vector,
            model_id=target.model_id,
            quality=row.quality,
            reference_jpeg=crop,
        )
        done.add(template_id)
        put_meta(session, key, json.dumps(sorted(done)).encode())
    report.templates_made += 1


def _source_models(session: Session, target_id: str) -> set[str]:
    stmt = select(TemplateRow.model_id).where(TemplateRow.model_id != target_id).distinct()
    return set(session.scalars(stmt))


def confirm(core: Visage, to: str, actor: Actor | None = None) -> MigrationReport:
    """Make model ``to`` the data dir's active model and delete every template of any other
    model. Refused while templates that have a reference crop are not yet migrated."""
    setting, target_id = _target(core, to)
    with core.store.session() as session:
        done = set(json.loads(get_meta(session, _progress_key(target_id)) or b"[]"))
        old = list(session.scalars(select(TemplateRow).where(TemplateRow.model_id != target_id)))
        pending = [t.id for t in old if t.reference is not None and t.id not in done]
    if pending:
        raise InputError(
            f"{len(pending)} templates are not migrated yet: run visage models migrate "
            f"--to {setting} first (templates whose crop shows no face: re-enrol them)"
        )
    with core.store.session() as session:
        old = list(session.scalars(select(TemplateRow).where(TemplateRow.model_id != target_id)))
        sources = _source_models(session, target_id)
        for row in old:
            session.delete(row)
        session.flush()
        if old:
            repo.bump_gallery_version(session, f"-migrate:{target_id}")
        put_meta(session, ACTIVE_MODEL, setting.encode())
        progress_row = session.get(Meta, _progress_key(target_id))
        if progress_row is not None:
            session.delete(progress_row)
        with_template = set(
            session.scalars(select(TemplateRow.subject_id).where(TemplateRow.model_id == target_id))
        )
        orphans = sorted(set(session.scalars(select(SubjectRow.id))) - with_template)
        core.audit(
            session,
            actor or Actor.local(),
            ModelMigrateAudit(
                step="confirm",
                source=",".join(sorted(sources)) or "-",
                target=target_id,
                target_fingerprint="",
                templates_made=0,
                templates_skipped=0,
                without_reference=0,
                templates_deleted=len(old),
                gallery=repo.gallery_digest(session),
            ),
        )
    core.gallery_changed()  # no copy of the deleted templates may stay in an index
    return MigrationReport(
        target=setting,
        target_model=target_id,
        source_templates=len(old),
        templates_made=0,
        templates_skipped=0,
        without_reference=0,
        no_face=[],
        no_consent=0,
        confirmed=True,
        templates_deleted=len(old),
        subjects_without_template=orphans,
    )
