"""Subjects and their consent records."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ValidationError

from visage.app import Visage
from visage.errors import ConsentError
from visage.gallery import repository as repo
from visage.governance.consent import ConsentRecord, LegalBasis
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


def add_subject(app: Visage, name: str, consent: ConsentRecord) -> SubjectCreated:
    with app.store.session() as session:
        return SubjectCreated(id=repo.create_subject(session, app.keyring, name, consent))


def _consents(row: SubjectRow) -> list[ConsentOut]:
    out = []
    for c in row.consents:
        record = repo.consent_of(c)
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


def list_subjects(app: Visage) -> list[SubjectOut]:
    with app.store.session() as session:
        return [
            SubjectOut(
                id=row.id,
                name=row.name,
                created_at=row.created_at,
                templates=n,
                consents=_consents(row),
            )
            for row, n in repo.list_subjects(session)
        ]


def show_subject(app: Visage, subject_id: str) -> SubjectDetail:
    with app.store.session() as session:
        row = repo.get_subject(session, subject_id)
        return SubjectDetail(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            templates=len(row.templates),
            consents=_consents(row),
            template_list=[
                TemplateOut(
                    id=t.id, model=t.model_id, quality=round(t.quality, 3), created_at=t.created_at
                )
                for t in row.templates
            ],
        )


def add_consent(app: Visage, subject_id: str, consent: ConsentRecord) -> None:
    with app.store.session() as session:
        repo.add_consent(session, subject_id, consent)


def delete_subject(app: Visage, subject_id: str) -> None:
    """Delete a subject and everything held about them; they vanish from searches at once.
    (Provable erasure with a certificate comes with the governance work.)"""
    with app.store.session() as session:
        version = repo.delete_subject(session, subject_id)
    app.gallery.removed(subject_id, version)


def delete_template(app: Visage, subject_id: str, template_id: str) -> None:
    with app.store.session() as session:
        repo.delete_template(session, subject_id, template_id)
    app.gallery.invalidate()


def rename_subject(app: Visage, subject_id: str, name: str) -> SubjectDetail:
    with app.store.session() as session:
        repo.rename_subject(session, subject_id, name)
    return show_subject(app, subject_id)
