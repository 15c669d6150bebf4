"""Subjects and their consent records.

Names and consent references are sealed in the store (see :mod:`visage.gallery.repository`):
they are opened here, in memory, for the person who asked, and never written to the audit
log — a consent reference appears there only as a keyed hash.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.errors import ConsentError, NotFoundError
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.audit_ops import (
    ConsentAddAudit,
    ConsentWithdrawAudit,
    SubjectCreateAudit,
    SubjectRenameAudit,
    TemplateDeleteAudit,
)
from visage.governance.consent import ConsentRecord, LegalBasis
from visage.store.keyring import REFERENCE_AUDIT, Keyring
from visage.store.schema import SubjectRow


class ConsentOut(BaseModel):
    reference: str
    purposes: list[str]
    legal_basis: str
    granted_at: datetime
    expires_on: date | None
    withdrawn_at: datetime | None
    valid: bool


class TemplateOut(BaseModel):
    id: str
    model: str
    quality: float
    created_at: datetime


class SubjectOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    templates: int
    consents: list[ConsentOut]


class SubjectDetail(SubjectOut):
    template_list: list[TemplateOut]


class SubjectCreated(BaseModel):
    id: str


class ConsentIn(BaseModel):
    """A consent record as a person gives it: the input of :func:`add_subject` and
    :func:`add_consent` in every door (see :meth:`record`)."""

    reference: str = Field(
        min_length=1,
        max_length=200,
        description="Reference of the signed consent (form id, document path).",
        examples=["FORM-2026-017"],
    )
    purposes: list[str] = Field(
        min_length=1, description="Purposes consented to.", examples=[["access-control"]]
    )
    legal_basis: LegalBasis = Field(
        default=LegalBasis.explicit_consent, description="GDPR Art. 9(2) basis."
    )
    expires_on: date | None = Field(
        default=None, description="Last day the consent is valid; none: no expiry."
    )

    def record(self) -> ConsentRecord:
        return make_consent(self.reference, self.purposes, self.legal_basis.value, self.expires_on)


class NewSubject(BaseModel):
    """A consenting person to register, with their first consent record."""

    name: str = Field(
        min_length=1,
        max_length=200,
        description="The person's name as they gave it.",
        examples=["Ada Lovelace"],
    )
    consent: ConsentIn


def make_consent(
    reference: str,
    purposes: list[str],
    legal_basis: str = LegalBasis.explicit_consent.value,
    expires_on: date | None = None,
) -> ConsentRecord:
    """Validate consent fields given by a person; errors become one ConsentError line."""
    try:
        return ConsentRecord(
            reference=reference,
            purposes=tuple(purposes),
            legal_basis=LegalBasis(legal_basis),
            expires_on=expires_on,
        )
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "consent"
            raise ConsentError(f"invalid consent record: {where}: {first['msg']}") from exc
        choices = ", ".join(b.value for b in LegalBasis)
        raise ConsentError(f"invalid legal basis {legal_basis!r}; one of: {choices}") from exc


def add_subject(
    core: Visage, name: str, consent: ConsentRecord, actor: Actor | None = None
) -> SubjectCreated:
    with core.store.session() as session:
        subject_id = repo.create_subject(session, core.keyring, name, consent)
        _audit_consent(core, session, actor, SubjectCreateAudit, subject_id, consent)
        return SubjectCreated(id=subject_id)


def _audit_consent(
    core: Visage,
    session: Session,
    actor: Actor | None,
    payload: type[SubjectCreateAudit | ConsentAddAudit],
    subject_id: str,
    consent: ConsentRecord,
) -> None:
    core.audit(
        session,
        actor or Actor.local(),
        payload(
            subject_id=subject_id,
            consent_reference_hash=core.keyring.blind(REFERENCE_AUDIT, consent.reference),
            purposes=list(consent.purposes),
            legal_basis=consent.legal_basis,
            expires_on=consent.expires_on,
        ),
    )


def _consents(keys: Keyring, row: SubjectRow) -> list[ConsentOut]:
    out = []
    for c in row.consents:
        record = repo.consent_of(keys, c)
        out.append(
            ConsentOut(
                reference=record.reference,
                purposes=list(record.purposes),
                legal_basis=record.legal_basis.value,
                granted_at=record.granted_at,
                expires_on=record.expires_on,
                withdrawn_at=record.withdrawn_at,
                valid=record.is_valid(),
            )
        )
    return out


def list_subjects(core: Visage, name: str | None = None) -> list[SubjectOut]:
    """Every subject, names opened in memory; with ``name``, only those with exactly that
    name (case and spacing aside), found through the blind index."""
    keys = core.keyring
    with core.store.session() as session:
        wanted = None if name is None else set(repo.find_by_name(session, keys, name))
        return [
            SubjectOut(
                id=row.id,
                name=repo.subject_name(keys, row),
                created_at=row.created_at,
                templates=n,
                consents=_consents(keys, row),
            )
            for row, n in repo.list_subjects(session)
            if wanted is None or row.id in wanted
        ]


def show_subject(core: Visage, subject_id: str) -> SubjectDetail:
    keys = core.keyring
    with core.store.session() as session:
        row = repo.get_subject(session, subject_id)
        return SubjectDetail(
            id=row.id,
            name=repo.subject_name(keys, row),
            created_at=row.created_at,
            templates=len(row.templates),
            consents=_consents(keys, row),
            template_list=[
                TemplateOut(
                    id=t.id, model=t.model_id, quality=round(t.quality, 3), created_at=t.created_at
                )
                for t in row.templates
            ],
        )


def add_consent(
    core: Visage, subject_id: str, consent: ConsentRecord, actor: Actor | None = None
) -> None:
    with core.store.session() as session:
        repo.add_consent(session, core.keyring, subject_id, consent)
        _audit_consent(core, session, actor, ConsentAddAudit, subject_id, consent)


class WithdrawResult(BaseModel):
    subject_id: str
    reference: str
    templates_deleted: int = Field(
        description="templates deleted because no valid consent remains (0 if another "
        "consent record still covers some purpose)"
    )


def withdraw_consent(
    core: Visage, subject_id: str, reference: str, actor: Actor | None = None
) -> WithdrawResult:
    """Withdraw a consent record (GDPR Art. 7(3)). When no valid consent remains, the
    subject's templates are deleted at once and they vanish from searches."""
    with core.store.session() as session:
        subject = repo.get_subject(session, subject_id)
        keys = core.keyring
        rows = [c for c in subject.consents if repo.consent_reference(keys, c) == reference]
        if not rows:
            raise NotFoundError(f"subject {subject_id} has no consent record {reference!r}")
        now = datetime.now(UTC)
        for row in rows:
            if row.withdrawn_at is None:
                row.withdrawn_at = now
        deleted = (
            0
            if repo.has_valid_consent(subject, now)
            else repo.delete_templates_of(session, subject_id)
        )
        core.audit(
            session,
            actor or Actor.local(),
            ConsentWithdrawAudit(
                subject_id=subject_id,
                consent_reference_hash=keys.blind(REFERENCE_AUDIT, reference),
                templates_deleted=deleted,
            ),
        )
    if deleted:
        core.gallery_changed(subject_id)
        core.store.scrub()  # no old page image of the templates left in the WAL
    return WithdrawResult(subject_id=subject_id, reference=reference, templates_deleted=deleted)


def delete_template(
    core: Visage, subject_id: str, template_id: str, actor: Actor | None = None
) -> None:
    with core.store.session() as session:
        repo.delete_template(session, subject_id, template_id)
        core.audit(
            session,
            actor or Actor.local(),
            TemplateDeleteAudit(
                subject_id=subject_id,
                template_id=template_id,
                gallery=repo.gallery_digest(session),
            ),
        )
    core.gallery_changed(subject_id)
    core.store.scrub()  # no old page image of the template left in the WAL


def rename_subject(
    core: Visage, subject_id: str, name: str, actor: Actor | None = None
) -> SubjectDetail:
    with core.store.session() as session:
        repo.rename_subject(session, core.keyring, subject_id, name)
        # The audit entry says that the name changed, never what it is.
        core.audit(session, actor or Actor.local(), SubjectRenameAudit(subject_id=subject_id))
    return show_subject(core, subject_id)
