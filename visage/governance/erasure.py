"""Provable erasure (GDPR Art. 17): what is destroyed, in which order, and the certificate.

Order matters, and each step survives a crash:

1. the subject's data key file is destroyed (crypto-shredding: every sealed template and
   snapshot, in this database and in any backup of it, becomes unreadable at this instant);
2. the subject's rows (name, consents, templates, events, reviews) are deleted in one
   transaction with SQLite's ``secure_delete`` on, with an audit entry committed alongside;
3. the write-ahead log is truncated, the subject deleted from the search index and its
   cache re-encrypted under a new key.

A subject row whose key is missing is an erasure that stopped after step 1; it is finished
at the next start. The certificate is signed with the audit signing key and names the audit
entry that records the erasure, so it can be checked against the chain.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from visage.governance.signing import Signer, verify_signature
from visage.store.schema import ConsentRow, EventRow, ReviewRow, TemplateRow

CERTIFICATE_TYPE = "visage-erasure-certificate/v1"


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


STORAGE_STEPS = [
    "data key file overwritten with random bytes, flushed and unlinked",
    "rows deleted with SQLite secure_delete (freed pages zeroed)",
    "write-ahead log checkpointed and truncated",
    "subject deleted from the search index; index cache re-encrypted under a new key and "
    "its journal dropped",
]


def canonical(body: CertificateBody) -> bytes:
    return json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def sign_certificate(signer: Signer, body: CertificateBody) -> ErasureCertificate:
    signature = signer.sign(canonical(body))
    return ErasureCertificate(body=body, signature=base64.b64encode(signature).decode())
