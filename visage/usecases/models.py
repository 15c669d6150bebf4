"""Moving a gallery to another embedding model without photographing anyone again.

``migrate`` re-embeds every template of another model from its sealed reference crop (dlib's
150x150 aligned chip, kept at enrolment): for a ``dlib150`` model the chip is embedded as it
is; for an ``arcface112`` model (SFace) the face is found again in the chip and aligned from
its five landmarks; for a fusion (``dlib-resnet+sface``) both. Each new template is stored
with a copy of the reference crop (so that a later migration can start from it too). A
subject's new templates are stored in one transaction, so the templates table itself is the
progress (:func:`pending`: no list to rewrite per template) and an interrupted run resumes
where it stopped: subjects already migrated are skipped.
The old templates stay, and searches keep using the active model, until ``confirm`` makes
the new model active (``meta`` ``active_model``) and deletes the old templates. Both steps
are audited (``model.migrate``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import func, select

from visage.core import ACTIVE_MODEL, Visage
from visage.errors import InputError, VisageError
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.audit_ops import ModelMigrateAudit
from visage.store.meta import put_meta
from visage.store.schema import SubjectRow, TemplateRow

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


def _target(core: Visage, to: str) -> tuple[str, str]:
    from visage.embedder_setting import check_embedder
    from visage.vision.embedders import model_id_of

    try:
        setting = check_embedder(to)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    return setting, model_id_of(setting)


def pending(session: Session, target_id: str) -> dict[str, list[str]]:
    """Per subject, its templates of other models not yet migrated to ``target_id``, oldest
    first. The templates table is the progress: a subject's templates are migrated together
    (one transaction), so those older than its newest ``target_id`` template are done; one
    enrolled with the old model after that is pending again."""
    newest_stmt = (
        select(TemplateRow.subject_id, func.max(TemplateRow.created_at))
        .where(TemplateRow.model_id == target_id)
        .group_by(TemplateRow.subject_id)
    )
    newest = {subject_id: created for subject_id, created in session.execute(newest_stmt)}
    stmt = (
        select(TemplateRow.id, TemplateRow.subject_id, TemplateRow.created_at)
        .where(TemplateRow.model_id != target_id)
        .order_by(TemplateRow.subject_id, TemplateRow.created_at, TemplateRow.id)
    )
    out: dict[str, list[str]] = {}
    for template_id, subject_id, created in session.execute(stmt):
        done_until = newest.get(subject_id)
        if done_until is None or created > done_until:
            out.setdefault(subject_id, []).append(template_id)
    return out


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
        total = session.scalar(
            select(func.count()).select_from(TemplateRow).where(TemplateRow.model_id != target_id)
        )
        todo = pending(session, target_id)
    total = total or 0
    report = MigrationReport(
        target=setting,
        target_model=target_id,
        source_templates=total,
        templates_made=0,
        templates_skipped=total - sum(len(t) for t in todo.values()),
        without_reference=0,
        no_face=[],
        no_consent=0,
    )
    seen = report.templates_skipped
    for subject_id, template_ids in todo.items():
        _migrate_subject(core, target, subject_id, template_ids, report)
        seen += len(template_ids)
        if progress is not None:
            progress(seen, total)
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


def _migrate_subject(
    core: Visage,
    target: FaceAnalyzer,
    subject_id: str,
    template_ids: list[str],
    report: MigrationReport,
) -> None:
    """One subject's pending templates, re-embedded and stored in one transaction (so
    that the subject is either done or not: see :func:`pending`)."""
    from visage.media.image import decode_image

    keys = core.keyring
    with core.store.session() as session:
        subject = repo.get_subject(session, subject_id)
        rows = [r for r in (session.get(TemplateRow, t) for t in template_ids) if r is not None]
        if not repo.has_valid_consent(subject):
            report.no_consent += len(rows)
            return
        made = []  # embedded before any write: the write lock is held only to store them
        for row in rows:
            try:
                crop = repo.reference_of(keys, row)
            except VisageError:
                crop = None
            if crop is None:
                report.without_reference += 1
                continue
            chip = decode_image(crop, max_pixels=1_000_000, max_bytes=1_000_000, source="reference")
            vector = target.embed_reference(chip.pixels)
            if vector is None:
                report.no_face.append(row.id)
            else:
                made.append((row.quality, crop, vector))
        for quality, crop, vector in made:
            repo.add_template(
                session,
                keys,
                subject,
                vector,
                model_id=target.model_id,
                quality=quality,
                reference_jpeg=crop,
            )
    report.templates_made += len(made)


def _source_models(session: Session, target_id: str) -> set[str]:
    stmt = select(TemplateRow.model_id).where(TemplateRow.model_id != target_id).distinct()
    return set(session.scalars(stmt))


def confirm(core: Visage, to: str, actor: Actor | None = None) -> MigrationReport:
    """Make model ``to`` the data dir's active model and delete every template of any other
    model. Refused while templates that have a reference crop are not yet migrated."""
    setting, target_id = _target(core, to)
    with core.store.session() as session:
        waiting = {t for ids in pending(session, target_id).values() for t in ids}
        stmt = select(TemplateRow.id).where(
            TemplateRow.id.in_(waiting), TemplateRow.reference.is_not(None)
        )
        left = list(session.scalars(stmt)) if waiting else []
    if left:
        raise InputError(
            f"{len(left)} templates are not migrated yet: run visage models migrate "
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
