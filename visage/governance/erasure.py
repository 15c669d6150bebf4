"""Provable erasure (GDPR Art. 17): what is destroyed, in which order, and the certificate.

Order matters, and each step survives a crash:

0. the intent is recorded (``erasure_intents``) in its own committed transaction;
1. the subject's data key file is destroyed (crypto-shredding: every sealed template and
   snapshot, in this database and in any backup of it, becomes unreadable at this instant);
2. the subject's rows (name, consents, templates, events, reviews) and the intent are deleted
   in one transaction with SQLite's ``secure_delete`` on, with an audit entry committed
   alongside;
3. the write-ahead log is checkpointed and truncated (:meth:`Store.scrub`), the subject
   deleted from the search index and its cache re-encrypted under a new key.

Only an erasure whose intent was recorded may be finished after a crash
(:func:`finish_interrupted`, run once when the store is opened). A subject whose key file is
missing *without* an intent is not an erasure but missing key material (an unmounted volume,
a restore in the wrong order): opening the store is refused with
:class:`KeyMaterialMissingError` and nothing is deleted. The one other proof accepted is this
data directory's own signed certificate for the subject (a database restored from a backup
taken before the erasure).

The certificate is signed with the audit signing key, names the audit entry that records the
erasure, and states only what the store reported: on SQLite a log that could not be truncated
makes it ``partial``; on PostgreSQL it says that deleted rows are not overwritten (dead
tuples, VACUUM, the server's own write-ahead log), and dead rows VACUUM could not remove make
it ``partial``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from visage.errors import MasterKeyError, NotFoundError
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.audit_ops import AuditOutcome, AuditPayload, EraseAudit
from visage.governance.signing import Signer, verify_signature
from visage.store.db import ScrubResult, Store
from visage.store.keyring import Keyring
from visage.store.schema import (
    AuditEntryRow,
    ConsentRow,
    ErasureIntentRow,
    EventRow,
    ReviewRow,
    SubjectRow,
    TemplateRow,
)

CERTIFICATE_TYPE = "visage-erasure-certificate/v1"
CERTIFICATES_DIR = "certificates"


class KeyMaterialMissingError(MasterKeyError):
    """Subjects have rows but no key file and no recorded erasure: an installation problem
    (exit 3), never a reason to delete anything."""

    def __init__(self, message: str, subject_ids: list[str]) -> None:
        super().__init__(message)
        self.subject_ids = subject_ids


class ErasedCounts(BaseModel):
    templates: int
    consents: int
    events: int
    reviews: int


def count_held(session: Session, subject_id: str) -> ErasedCounts:
    def n(table: type[TemplateRow | ConsentRow | EventRow | ReviewRow]) -> int:
        stmt = select(func.count()).select_from(table).where(table.subject_id == subject_id)
        return int(session.scalar(stmt) or 0)

    return ErasedCounts(
        templates=n(TemplateRow), consents=n(ConsentRow), events=n(EventRow), reviews=n(ReviewRow)
    )


class CertificateBody(BaseModel):
    type: str = CERTIFICATE_TYPE
    subject_id: str
    erased_at: datetime
    requested_by: str
    resumed_after_interruption: bool
    data_key_destroyed: bool
    deleted: ErasedCounts
    storage: list[str]
    wal_truncated: bool | None = None
    """False when a reader kept the write-ahead log from being truncated (then ``partial``);
    None on PostgreSQL (whose log is not Visage's to truncate: ``storage`` says so) and in
    certificates written before this field existed."""
    store: str | None = None
    """``sqlite`` or ``postgresql``: the engine the rows were deleted from (None in
    certificates written before this field existed)."""
    partial: bool | None = None
    """Some storage step could not be completed; ``storage`` says which."""
    audit_seq: int
    audit_hash: str
    signing_key_id: str
    public_key: str


class ErasureCertificate(BaseModel):
    body: CertificateBody
    signature: str

    def verify(self) -> bool:
        """True when the signature holds for the public key inside the certificate (compare
        that key with `visage audit pubkey` before trusting it)."""
        return verify_signature(
            base64.b64decode(self.body.public_key),
            base64.b64decode(self.signature),
            canonical(self.body),
        )


KEY_DESTROYED = "data key file overwritten with random bytes, flushed and unlinked"
KEY_ALREADY_GONE = "data key file already destroyed by the interrupted erasure"
ROWS_DELETED = "rows deleted with SQLite secure_delete (freed pages zeroed)"
ROWS_DELETED_PLAIN = "rows deleted, but SQLite secure_delete was OFF: freed pages NOT zeroed"
WAL_TRUNCATED = "write-ahead log checkpointed and truncated"
ROWS_DELETED_PG = (
    "rows deleted in PostgreSQL: the deleted row versions are not overwritten; until VACUUM "
    "removes them they stay in the table files as dead tuples, and afterwards their bytes can "
    "remain in free space of the data files until reused, and in PostgreSQL's write-ahead log "
    "(and any WAL archive, replica or base backup) until recycled; the sealed templates among "
    "them are unreadable since the data key is destroyed"
)
VACUUMED_PG = (
    "VACUUM ran on Visage's tables and removed every dead row version (space made reusable, "
    "not overwritten)"
)
INDEX_REWRITTEN = (
    "subject deleted from the search index; index cache re-encrypted under a new key and "
    "its journal dropped"
)


def storage_steps(destroyed_now: bool, scrub: ScrubResult) -> list[str]:
    """The storage steps as they happened (never as they were meant to happen)."""
    key = KEY_DESTROYED if destroyed_now else KEY_ALREADY_GONE
    if scrub.postgresql:
        vacuum = (
            VACUUMED_PG
            if scrub.complete
            else f"VACUUM ran on Visage's tables but left {scrub.dead_tuples} dead row versions "
            f"after {scrub.attempts} attempts (an open transaction could still see them): they "
            "stay until the next VACUUM (autovacuum runs it)"
        )
        return [key, ROWS_DELETED_PG, vacuum, INDEX_REWRITTEN]
    wal = (
        WAL_TRUNCATED
        if scrub.wal_truncated
        else f"write-ahead log NOT truncated: another connection held it after "
        f"{scrub.attempts} attempts ({scrub.checkpointed_frames} of {scrub.log_frames} "
        f"frames checkpointed, {scrub.wal_bytes} bytes left); the next deletion truncates it"
    )
    return [
        key,
        ROWS_DELETED if scrub.secure_delete else ROWS_DELETED_PLAIN,
        wal,
        INDEX_REWRITTEN,
    ]


def canonical(body: CertificateBody) -> bytes:
    # exclude_none: a certificate written before the optional fields existed still verifies.
    data = body.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def sign_certificate(signer: Signer, body: CertificateBody) -> ErasureCertificate:
    signature = signer.sign(canonical(body))
    return ErasureCertificate(body=body, signature=base64.b64encode(signature).decode())


# -- the erasure itself -------------------------------------------------------------------


class AuditAppender(Protocol):
    """``Visage.audit``: append an entry inside the caller's transaction."""

    def __call__(self, session: Session, actor: Actor, payload: AuditPayload) -> AuditEntryRow: ...


@dataclass(frozen=True)
class Eraser:
    """Everything an erasure touches. Built by the core (and, before the store is handed
    out, by the store opening), so that the steps live here and nowhere else."""

    store: Store
    keys: Keyring
    signer: Signer
    audit: AuditAppender
    home: Path
    drop_from_index: Callable[[str], None]
    """Remove the subject from the search index and its cache (rotating the cache key)."""

    def erase(self, subject_id: str, actor: Actor) -> ErasureCertificate:
        """Record the intent, destroy the key, then the data; the signed certificate."""
        with self.store.session() as session:
            if session.get(SubjectRow, subject_id) is None:
                raise NotFoundError(f"no subject {subject_id}")
        record_intent(self.store, subject_id, actor)  # committed before the key goes
        destroyed = self.keys.destroy(subject_id)
        certificate = self._complete(subject_id, actor, resumed=False, destroyed=destroyed)
        if certificate is None:  # a concurrent erasure of the same subject finished first
            raise NotFoundError(f"no subject {subject_id}")
        return certificate

    def _complete(
        self, subject_id: str, actor: Actor, *, resumed: bool, destroyed: bool
    ) -> ErasureCertificate | None:
        """Delete the rows and the intent in one transaction, then scrub and certify. None
        when another thread or process completed this erasure first."""
        with self.store.session() as session:
            # The write lock first, then the re-check: two finishers never both delete.
            Store.serialise(session, "erasure")
            if session.get(SubjectRow, subject_id) is None:
                session.execute(
                    delete(ErasureIntentRow).where(ErasureIntentRow.subject_id == subject_id)
                )
                return None
            counts = count_held(session, subject_id)
            repo.delete_subject(session, subject_id)
            session.execute(
                delete(ErasureIntentRow).where(ErasureIntentRow.subject_id == subject_id)
            )
            entry = self.audit(
                session,
                actor,
                EraseAudit(
                    subject_id=subject_id,
                    outcome=AuditOutcome.resumed if resumed else AuditOutcome.ok,
                    gallery=repo.gallery_digest(session),
                    templates=counts.templates,
                    consents=counts.consents,
                    events=counts.events,
                    reviews=counts.reviews,
                ),
            )
            seq, head, at = entry.seq, entry.hash, entry.at
        scrub = self.store.scrub()
        self.drop_from_index(subject_id)
        certificate = sign_certificate(
            self.signer,
            CertificateBody(
                subject_id=subject_id,
                erased_at=at,
                requested_by=actor.id,
                resumed_after_interruption=resumed,
                data_key_destroyed=destroyed or not self.keys.exists(subject_id),
                deleted=counts,
                storage=storage_steps(destroyed, scrub),
                wal_truncated=None if scrub.postgresql else scrub.wal_truncated,
                store=scrub.engine,
                partial=not scrub.complete,
                audit_seq=seq,
                audit_hash=head,
                signing_key_id=self.signer.key_id,
                public_key=self.signer.public_b64,
            ),
        )
        path = certificate_path(self.home, subject_id)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_text(certificate.model_dump_json(indent=2))
        return certificate

    def finish_interrupted(self) -> list[ErasureCertificate]:
        """Complete every recorded erasure that did not finish; refuse (and delete nothing)
        when a subject's key file is missing without one. Called once, at store opening."""
        with self.store.session() as session:
            ids = list(session.scalars(select(SubjectRow.id)))
            intents = set(session.scalars(select(ErasureIntentRow.subject_id)))
        missing = [i for i in ids if not self.keys.exists(i)]
        if missing:
            # Read again *after* looking at the files: an erasure running now records its
            # intent before destroying the key, so a missing key seen above has its intent
            # (or is gone) in this newer snapshot.
            with self.store.session() as session:
                intents = set(session.scalars(select(ErasureIntentRow.subject_id)))
                present = set(session.scalars(select(SubjectRow.id)))
            unrecorded = [i for i in missing if i in present and i not in intents]
            certified = [i for i in unrecorded if self._certified(i)]
            unrecorded = [i for i in unrecorded if i not in certified]
            if unrecorded:
                raise KeyMaterialMissingError(
                    missing_keys_message(self.keys.dir, unrecorded), unrecorded
                )
            for subject_id in certified:  # a database restored from before the erasure
                record_intent(self.store, subject_id, Actor.system())
                intents.add(subject_id)
        done = []
        for subject_id in sorted(intents):
            destroyed = self.keys.destroy(subject_id)  # a crash before step 1: finish it
            certificate = self._complete(
                subject_id, Actor.system(), resumed=True, destroyed=destroyed
            )
            if certificate is not None:
                done.append(certificate)
        return done

    def _certified(self, subject_id: str) -> bool:
        """This data directory signed a certificate of this subject's erasure."""
        path = certificate_path(self.home, subject_id)
        try:
            certificate = ErasureCertificate.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return False
        body = certificate.body
        return (
            body.subject_id == subject_id
            and body.public_key == self.signer.public_b64
            and certificate.verify()
        )


def record_intent(store: Store, subject_id: str, actor: Actor) -> None:
    """Step 0, in its own committed transaction: from now on a missing key file of this
    subject is an erasure to finish, not a loss to report."""
    with store.session() as session:
        session.execute(
            Store.insert_new(session, ErasureIntentRow.__table__).values(
                subject_id=subject_id, requested_at=datetime.now(UTC), actor=actor.id
            )
        )


def missing_keys_message(folder: Path, subject_ids: list[str]) -> str:
    n = len(subject_ids)
    who = "1 subject" if n == 1 else f"{n} subjects"
    if not folder.is_dir():
        return (
            f"key folder {folder} is missing ({who} without a data key and no recorded "
            "erasure): mount or restore it; nothing was erased"
        )
    example = folder / f"{subject_ids[0]}.key"
    return (
        f"{who} without a key file in {folder} (e.g. {example}) and no recorded erasure: "
        "restore them from the key backup (or, if their keys are truly gone, erase "
        "those subjects); nothing was erased"
    )


def certificate_path(home: Path, subject_id: str) -> Path:
    return home / CERTIFICATES_DIR / f"{subject_id}.json"
