"""What an audit entry may say: one operation enum and one payload model per operation.

An entry is written from a payload (``core.audit(session, actor, IdentifyAudit(...))``) and
read back into the same model (:func:`read`), so a writer
and a reader cannot drift apart silently: a renamed field fails ``mypy`` at the call site or
in the reader, and an entry that lacks a field a reader needs raises
:class:`AuditRecordError` instead of counting as 0 in a report to a regulator.

The stored form is unchanged from the untyped ``audit(op: str, **fields)`` it replaces, so
that the hash chain of existing logs stays valid and old entries stay readable: the
operation is the enum's value; ``purpose``, ``subject_id`` and ``outcome`` are the entry's
columns; every other field goes to ``details`` under its own name, in the model's field order
(the order of the keyword arguments before), through the same JSON conversion. A field in a
model's ``omit_if_none`` is left out of ``details`` when it is None, as the conditional
``**{...}`` of the old call sites did.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from visage.errors import VisageError
from visage.governance.access import Role
from visage.governance.audit import AuditEntry
from visage.governance.consent import LegalBasis
from visage.governance.review import BlindAnswer
from visage.governance.review import Status as ReviewStatus


class AuditOp(StrEnum):
    """Every operation the log records; the values are what is stored (never rename one)."""

    detect = "detect"
    verify = "verify"
    identify = "identify"
    enroll = "enroll"
    subject_create = "subject.create"
    subject_rename = "subject.rename"
    consent_add = "consent.add"
    consent_withdraw = "consent.withdraw"
    template_delete = "template.delete"
    export = "export"
    erase = "erase"
    review_confirm = "review.confirm"
    review_reject = "review.reject"
    review_inconclusive = "review.inconclusive"
    review_outcome = "review.outcome"
    watch = "watch"
    anonymize = "anonymize"
    camera_create = "camera.create"
    camera_update = "camera.update"
    camera_delete = "camera.delete"
    profile_set = "profile.set"
    retention_purge = "retention.purge"
    key_create = "key.create"
    key_revoke = "key.revoke"
    user_create = "user.create"
    user_update = "user.update"
    user_disable = "user.disable"
    sign_in = "sign_in"
    sign_out = "sign_out"
    halt = "halt"
    resume = "resume"
    model_migrate = "model.migrate"


class AuditOutcome(StrEnum):
    ok = "ok"
    refused = "refused"
    failed = "failed"
    resumed = "resumed"
    """An erasure interrupted earlier and completed later."""


class AuditRecordError(VisageError):
    """An audit entry does not hold what its operation's payload requires."""


ENVELOPE = frozenset({"purpose", "subject_id", "outcome"})
"""Payload fields stored as the entry's own columns, not in ``details``."""


class AuditPayload(BaseModel):
    """Base of every payload. Subclasses set ``op`` and declare ``purpose``,
    ``subject_id`` and ``outcome`` as fields when the operation has them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: ClassVar[AuditOp]
    omit_if_none: ClassVar[frozenset[str]] = frozenset()
    registry: ClassVar[dict[AuditOp, list[type[AuditPayload]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "op" in cls.__dict__:
            AuditPayload.registry.setdefault(cls.op, []).append(cls)

    @property
    def purpose_of(self) -> str | None:
        value = getattr(self, "purpose", None)
        return None if value is None else str(value)

    @property
    def subject_of(self) -> str | None:
        value = getattr(self, "subject_id", None)
        return None if value is None else str(value)

    @property
    def outcome_of(self) -> AuditOutcome:
        return AuditOutcome(getattr(self, "outcome", AuditOutcome.ok))

    def details(self) -> dict[str, Any]:
        """The ``details`` column before JSON conversion (Python values, field order)."""
        dumped = self.model_dump(exclude=set(ENVELOPE))
        return {k: v for k, v in dumped.items() if v is not None or k not in self.omit_if_none}


# -- recognition ------------------------------------------------------------------------------


class DetectAudit(AuditPayload):
    op = AuditOp.detect
    input_sha256: str
    faces: int


class VerifyAudit(AuditPayload):
    op = AuditOp.verify
    purpose: str | None
    input_sha256: list[str]
    model: str
    threshold: float
    same: bool


class IdentifyAudit(AuditPayload):
    """A 1:N search that ran. Bystanders appear as a count only."""

    op = AuditOp.identify
    omit_if_none = frozenset({"authorisation_ref"})
    purpose: str
    input_sha256: str
    model: str
    threshold: float
    gallery: str
    faces: int
    matches: int
    bystanders: int
    matched_subjects: list[str]
    reviews: list[str]
    authorisation_ref: str | None = None


class _RefusedAudit(AuditPayload):
    """A search refused by a gate (profile, authorisation, ceiling) before it ran."""

    omit_if_none = frozenset({"authorisation_ref"})
    purpose: str
    outcome: AuditOutcome = AuditOutcome.refused
    reason: str
    authorisation_ref: str | None = None


class IdentifyRefusedAudit(_RefusedAudit):
    op = AuditOp.identify


class WatchRefusedAudit(_RefusedAudit):
    op = AuditOp.watch


class AnonymizeRefusedAudit(_RefusedAudit):
    op = AuditOp.anonymize


REFUSALS: dict[AuditOp, type[_RefusedAudit]] = {
    AuditOp.identify: IdentifyRefusedAudit,
    AuditOp.watch: WatchRefusedAudit,
    AuditOp.anonymize: AnonymizeRefusedAudit,
}


def refused(
    op: AuditOp, *, purpose: str, reason: str, authorisation_ref: str | None = None
) -> AuditPayload:
    """The refusal entry of the matching operation ``op`` (identify, watch or anonymize)."""
    return REFUSALS[op](purpose=purpose, reason=reason, authorisation_ref=authorisation_ref)


class WatchAudit(AuditPayload):
    """A camera or video run that ended (``ok``) or broke off (``failed``, with a reason)."""

    op = AuditOp.watch
    omit_if_none = frozenset({"reason", "authorisation_ref"})
    purpose: str
    outcome: AuditOutcome
    reason: str | None = None
    camera: str | None
    frames: int
    tracks: int
    events: int
    bystander_tracks: int
    reconnects: int
    dropped_frames: int = 0
    """Absent from entries written before drops were counted (they dropped none)."""
    model: str
    threshold: float
    gallery: str
    authorisation_ref: str | None = None


class AnonymizeAudit(AuditPayload):
    op = AuditOp.anonymize
    omit_if_none = frozenset({"authorisation_ref"})
    purpose: str | None
    kind: str
    frames: int
    faces_masked: int
    kept_visible: int
    recognised_subjects: list[str]
    authorisation_ref: str | None = None


# -- subjects, consent, templates -------------------------------------------------------------


class EnrollAudit(AuditPayload):
    op = AuditOp.enroll
    subject_id: str
    template_id: str
    input_sha256: str
    model: str
    quality: float
    gallery: str


class _ConsentAudit(AuditPayload):
    subject_id: str
    consent_reference_hash: str
    purposes: list[str]
    legal_basis: LegalBasis
    expires_on: date | None


class SubjectCreateAudit(_ConsentAudit):
    op = AuditOp.subject_create


class ConsentAddAudit(_ConsentAudit):
    op = AuditOp.consent_add


class ConsentWithdrawAudit(AuditPayload):
    op = AuditOp.consent_withdraw
    subject_id: str
    consent_reference_hash: str
    templates_deleted: int


class ModelMigrateAudit(AuditPayload):
    """A gallery moved to another embedding model: a run that re-embedded reference crops
    (``step`` = "embed"), or the switch that made the new model active and deleted the old
    model's templates (``step`` = "confirm")."""

    op = AuditOp.model_migrate
    step: str
    source: str
    target: str
    target_fingerprint: str
    templates_made: int
    templates_skipped: int
    without_reference: int
    templates_deleted: int
    gallery: str


class TemplateDeleteAudit(AuditPayload):
    op = AuditOp.template_delete
    subject_id: str
    template_id: str
    gallery: str


class SubjectRenameAudit(AuditPayload):
    """That the name changed, never what it is."""

    op = AuditOp.subject_rename
    subject_id: str


class ExportAudit(AuditPayload):
    op = AuditOp.export
    subject_id: str
    files: int
    zip_sha256: str


class EraseAudit(AuditPayload):
    op = AuditOp.erase
    subject_id: str
    outcome: AuditOutcome
    gallery: str
    templates: int
    consents: int
    events: int
    reviews: int


# -- review -----------------------------------------------------------------------------------


class _ReviewDecisionAudit(AuditPayload):
    omit_if_none = frozenset({"blind_answer", "reason"})
    purpose: str
    subject_id: str
    review_id: str
    status: ReviewStatus
    blind_answer: BlindAnswer | None = None
    """The answer to "same person?" given before the name and score were shown (console)."""
    reason: str | None = None


class ReviewConfirmAudit(_ReviewDecisionAudit):
    op = AuditOp.review_confirm


class ReviewRejectAudit(_ReviewDecisionAudit):
    op = AuditOp.review_reject


class ReviewInconclusiveAudit(_ReviewDecisionAudit):
    op = AuditOp.review_inconclusive


class ReviewOutcomeAudit(AuditPayload):
    op = AuditOp.review_outcome
    purpose: str
    subject_id: str
    review_id: str


# -- cameras ----------------------------------------------------------------------------------


class CameraCreateAudit(AuditPayload):
    op = AuditOp.camera_create
    purpose: str
    camera: str
    source: str
    """Masked: no password or token."""
    enabled: bool


class CameraUpdateAudit(AuditPayload):
    """Enabled or disabled; or edited (``changed`` names the fields, ``source`` masked)."""

    op = AuditOp.camera_update
    omit_if_none = frozenset({"changed", "purpose", "source"})
    camera: str
    enabled: bool
    changed: list[str] | None = None
    purpose: str | None = None
    source: str | None = None


class CameraDeleteAudit(AuditPayload):
    op = AuditOp.camera_delete
    camera: str


# -- administration ---------------------------------------------------------------------------


class ProfileSetAudit(AuditPayload):
    op = AuditOp.profile_set
    changed: list[str]
    profile: dict[str, Any]


class RetentionPurgeAudit(AuditPayload):
    op = AuditOp.retention_purge
    events_deleted: int
    reviews_deleted: int
    audit_entries_dropped: int
    templates_deleted: int
    subjects_without_consent: list[str]
    orphan_keys_destroyed: int


class KeyCreateAudit(AuditPayload):
    op = AuditOp.key_create
    omit_if_none = frozenset({"purposes", "owner"})
    key_id: str
    key_role: Role
    purposes: list[str] | None = None
    owner: str | None = None
    """Both left out for the first admin key, created by the server at start."""


class KeyRevokeAudit(AuditPayload):
    op = AuditOp.key_revoke
    key_id: str


# -- people and the stop switch --------------------------------------------------------------


class UserCreateAudit(AuditPayload):
    """A console account was created (its name is the actor id ``user:<name>`` elsewhere)."""

    op = AuditOp.user_create
    user: str
    user_role: Role
    purposes: list[str]


class UserUpdateAudit(AuditPayload):
    """A console account changed: ``change`` is e.g. ``password``, ``totp``, ``enable``."""

    op = AuditOp.user_update
    user: str
    change: str


class UserDisableAudit(AuditPayload):
    op = AuditOp.user_disable
    user: str


class SignInAudit(AuditPayload):
    """A console sign-in; a refusal (wrong password, throttled, disabled) is ``refused``."""

    op = AuditOp.sign_in
    outcome: AuditOutcome = AuditOutcome.ok
    user: str
    reason: str = ""


class SignOutAudit(AuditPayload):
    op = AuditOp.sign_out
    user: str


class HaltAudit(AuditPayload):
    """1:N processing stopped (AI Act Art. 14(4)(e)): ``scope`` is ``all``,
    ``camera:<name>`` or ``purpose:<purpose>``."""

    op = AuditOp.halt
    scope: str
    reason: str


class ResumeAudit(AuditPayload):
    op = AuditOp.resume
    scope: str


P = TypeVar("P", bound=AuditPayload)


def read(entry: AuditEntry, model: type[P]) -> P:
    """The entry as ``model``: its details plus the envelope fields the model declares.
    Raises :class:`AuditRecordError` when the entry is of another operation or lacks (or
    mistypes) a field, so that no reader ever counts a missing figure as 0."""
    if entry.operation != model.op:
        raise AuditRecordError(
            f"audit entry {entry.seq} is a {entry.operation!r} entry, not {model.op.value!r}"
        )
    envelope = {"purpose": entry.purpose, "subject_id": entry.subject_id, "outcome": entry.outcome}
    data = {**entry.details, **{k: v for k, v in envelope.items() if k in model.model_fields}}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '-'}: {err['msg'].lower()}"
            for err in exc.errors()
        )
        raise AuditRecordError(
            f"audit entry {entry.seq} ({entry.operation}) cannot be read as "
            f"{model.__name__}: {problems}"
        ) from None
