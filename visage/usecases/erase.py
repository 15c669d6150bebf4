"""Erase a subject and prove it: see :mod:`visage.governance.erasure` for the steps."""

from __future__ import annotations

from visage.core import Visage
from visage.errors import NotFoundError
from visage.governance.audit import Actor
from visage.governance.erasure import (
    CERTIFICATES_DIR,
    Eraser,
    ErasureCertificate,
    KeyMaterialMissingError,
    certificate_path,
    record_intent,
)
from visage.store.db import open_store

__all__ = ["CERTIFICATES_DIR", "certificate_of", "erase"]


def _eraser(core: Visage) -> Eraser:
    return Eraser(
        store=core.store,
        keys=core.keyring,
        signer=core.signer,
        audit=core.audit,
        home=core.home,
        drop_from_index=core.gallery_erased,
    )


def erase(core: Visage, subject_id: str, actor: Actor | None = None) -> ErasureCertificate:
    """Record the intent, destroy the subject's key, then their data; returns the signed
    certificate.

    If the store refuses to open because this subject's key file is missing with no
    recorded erasure, asking to erase them *is* that record: it is written, and opening the
    store then finishes the erasure (any other subject with a missing key still refuses)."""
    actor = actor or Actor.local()
    try:
        eraser = _eraser(core)
    except KeyMaterialMissingError as exc:
        if subject_id not in exc.subject_ids:
            raise
        store = open_store(core.home, create=False, url=core.settings.database_url)
        try:
            record_intent(store, subject_id, actor)
        finally:
            store.close()
        _ = core.store  # finishes the recorded erasure
        return certificate_of(core, subject_id)
    return eraser.erase(subject_id, actor)


def certificate_of(core: Visage, subject_id: str) -> ErasureCertificate:
    """A stored certificate (erasures keep only the subject id, never the name)."""
    path = certificate_path(core.home, subject_id)
    if len(subject_id) != 32 or not subject_id.isalnum() or not path.is_file():
        raise NotFoundError(f"no erasure certificate for {subject_id}")
    return ErasureCertificate.model_validate_json(path.read_text())
