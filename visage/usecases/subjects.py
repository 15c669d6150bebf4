"""Subjects and their consent records.

Names and consent references are sealed in the store (see :mod:`visage.gallery.repository`):
they are opened here, in memory, for the person who asked, and never written to the audit
log — a consent reference appears there only as a keyed hash.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from visage.core import Visage
from visage.errors import ConsentError, InputError, NotFoundError
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
from visage.governance.erasure import ErasureCertificate
from visage.store.db import Store
from visage.store.keyring import REFERENCE_AUDIT, Keyring, normalise_text
from visage.store.schema import SubjectRow, TemplateRow
from visage.usecases import erase as erase_uc


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


class ExpiredConsentError(ConsentError, InputError):
    """A consent record whose last day has already passed: refused when given (bad input,
    HTTP 422), rather than stored as a record that never was in force."""


def refuse_expired(consent: ConsentRecord) -> None:
    """Every door creates consent records through :func:`add_subject` or
    :func:`add_consent`, so this one check covers the API, the CLI and the console."""
    if consent.expires_on is not None and consent.expires_on < datetime.now(UTC).date():
        raise ExpiredConsentError(
            f"consent expired on {consent.expires_on:%Y-%m-%d}, before today; "
            "give the last day it is valid (today or later), or none for no expiry"
        )


def add_subject(
    core: Visage, name: str, consent: ConsentRecord, actor: Actor | None = None
) -> SubjectCreated:
    refuse_expired(consent)
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
    refuse_expired(consent)
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


class SubjectSummary(BaseModel):
    """One row of a page of subjects: enough to pick a person, nothing sealed but the name."""

    id: str
    name: str
    created_at: datetime
    templates: int
    consent_valid: bool = Field(description="at least one consent record is in force")


class SubjectPage(BaseModel):
    subjects: list[SubjectSummary]
    total: int = Field(description="subjects matching the search, on every page")
    page: int
    per_page: int
    query: str = ""

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


MAX_PER_PAGE = 200


def _search_ids(session: Session, keys: Keyring, query: str) -> list[str]:
    """Subjects a search finds without opening a single name: the exact name (case and
    spacing aside) through the blind index, or an id (its first 6 or more hex digits)."""
    found = repo.find_by_name(session, keys, query)
    text = query.strip().lower()
    if 6 <= len(text) <= 32 and all(c in "0123456789abcdef" for c in text):
        stmt = select(SubjectRow.id).where(SubjectRow.id.startswith(text, autoescape=True))
        found += [i for i in session.scalars(stmt) if i not in found]
    return found


def page_subjects(core: Visage, page: int = 1, per_page: int = 50, query: str = "") -> SubjectPage:
    """One page of subjects, newest first, opening only that page's names (so a page costs
    the same at 10,000 subjects as at 10). ``query``: see :func:`_search_ids` — names are
    sealed, so a search matches a whole name, never a part of one."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    query = query.strip()
    keys = core.keyring
    with core.store.session() as session:
        where = []
        if query:
            where.append(SubjectRow.id.in_(_search_ids(session, keys, query)))
        total = session.scalar(select(func.count()).select_from(SubjectRow).where(*where)) or 0
        # Newest first in registration order: on SQLite the table's rowid, which it walks without
        # sorting (ordering 10,000 rows by created_at, a column without an index, costs a
        # temporary B-tree on every page). Then only this page's rows are loaded.
        ids = list(
            session.scalars(
                select(SubjectRow.id)
                .where(*where)
                .order_by(*Store.newest_first(session, SubjectRow.__table__, SubjectRow.created_at))
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        )
        loaded = session.scalars(
            select(SubjectRow)
            .where(SubjectRow.id.in_(ids))
            .options(selectinload(SubjectRow.consents))
        )
        by_id = {row.id: row for row in loaded}
        rows = [by_id[i] for i in ids if i in by_id]
        stmt = (
            select(TemplateRow.subject_id, func.count())
            .where(TemplateRow.subject_id.in_(ids))
            .group_by(TemplateRow.subject_id)
        )
        counts = {sid: int(n) for sid, n in session.execute(stmt)}
        now = datetime.now(UTC)
        return SubjectPage(
            subjects=[
                SubjectSummary(
                    id=row.id,
                    name=repo.subject_name(keys, row),
                    created_at=row.created_at,
                    templates=counts.get(row.id, 0),
                    consent_valid=repo.has_valid_consent(row, now),
                )
                for row in rows
            ],
            total=total,
            page=page,
            per_page=per_page,
            query=query,
        )


class NameMismatchError(InputError):
    """The name typed to confirm an erasure is not the subject's: nothing was erased."""


def erase_named(
    core: Visage, subject_id: str, typed_name: str, actor: Actor | None = None
) -> ErasureCertificate:
    """Erase a subject once the person asking has typed their name (case and spacing
    aside): the console's guard against erasing the wrong person, which cannot be undone."""
    with core.store.session() as session:
        row = repo.get_subject(session, subject_id)
        name = repo.subject_name(core.keyring, row)
    if not typed_name.strip() or normalise_text(typed_name) != normalise_text(name):
        raise NameMismatchError("the name typed does not match the subject's name; nothing erased")
    return erase_uc.erase(core, subject_id, actor)
