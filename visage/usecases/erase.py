"""Erase a subject and prove it: see :mod:`visage.governance.erasure` for the steps."""

from __future__ import annotations

from sqlalchemy import select

from visage.app import Visage
from visage.errors import NotFoundError
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.erasure import (
    STORAGE_STEPS,
    CertificateBody,
    ErasureCertificate,
    count_held,
    sign_certificate,
)
from visage.store.schema import SubjectRow

CERTIFICATES_DIR = "certificates"


def erase(app: Visage, subject_id: str, actor: Actor | None = None) -> ErasureCertificate:
    """Destroy the subject's key, then their data; returns the signed certificate."""
    with app.store.session() as session:
        repo.get_subject(session, subject_id)  # NotFoundError for an unknown id
    destroyed = app.keyring.destroy(subject_id)
    return _complete(app, subject_id, actor or Actor.local(), resumed=False, destroyed=destroyed)


def _complete(
    app: Visage, subject_id: str, actor: Actor, *, resumed: bool, destroyed: bool
) -> ErasureCertificate:
    with app.store.session() as session:
        counts = count_held(session, subject_id)
        repo.delete_subject(session, subject_id)
        entry = app.audit(
            session,
            actor,
            "erase",
            subject_id=subject_id,
            outcome="resumed" if resumed else "ok",
            gallery=repo.gallery_digest(session),
            **counts.model_dump(),
        )
        seq, head, at = entry.seq, entry.hash, entry.at
    app.store.truncate_wal()
    app.gallery_erased(subject_id)
    signer = app.signer
    certificate = sign_certificate(
        signer,
        CertificateBody(
            subject_id=subject_id,
            erased_at=at,
            requested_by=actor.id,
            resumed_after_interruption=resumed,
            data_key_destroyed=destroyed or resumed,
            deleted=counts,
            storage=STORAGE_STEPS,
            audit_seq=seq,
            audit_hash=head,
            signing_key_id=signer.key_id,
            public_key=signer.public_b64,
        ),
    )
    folder = app.home / CERTIFICATES_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / f"{subject_id}.json").write_text(certificate.model_dump_json(indent=2))
    return certificate


def finish_interrupted(app: Visage) -> list[ErasureCertificate]:
    """Complete every erasure whose key was destroyed but whose rows remain."""
    with app.store.session() as session:
        ids = list(session.scalars(select(SubjectRow.id)))
    keys = app.keyring
    pending = [i for i in ids if not keys.exists(i)]
    return [_complete(app, i, Actor.system(), resumed=True, destroyed=False) for i in pending]


def certificate_of(app: Visage, subject_id: str) -> ErasureCertificate:
    """A stored certificate (erasures keep only the subject id, never the name)."""
    path = app.home / CERTIFICATES_DIR / f"{subject_id}.json"
    if len(subject_id) != 32 or not subject_id.isalnum() or not path.is_file():
        raise NotFoundError(f"no erasure certificate for {subject_id}")
    return ErasureCertificate.model_validate_json(path.read_text())
