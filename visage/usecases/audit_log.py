"""Read, verify, export and sign the audit chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from visage.app import Visage
from visage.governance import audit
from visage.governance.audit import AuditEntry, Checkpoint, VerifyReport


def verify(app: Visage) -> VerifyReport:
    with app.store.session() as session:
        return audit.verify(session, app.signer.public_raw)


def entries(
    app: Visage,
    *,
    since: datetime | None = None,
    after_seq: int = 0,
    operation: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    with app.store.session() as session:
        return list(
            audit.entries(
                session, since=since, after_seq=after_seq, operation=operation, limit=limit
            )
        )


def export_lines(app: Visage, since: datetime | None = None) -> Iterator[str]:
    """JSON Lines: every entry, then every checkpoint (``"checkpoint": true``), so that an
    auditor can re-check the chain and the signatures outside Visage."""
    with app.store.session() as session:
        for entry in audit.entries(session, since=since):
            yield entry.model_dump_json()
        for cp in audit.checkpoints(session):
            yield '{"checkpoint": true, ' + cp.model_dump_json()[1:]


def checkpoint(app: Visage) -> Checkpoint | None:
    with app.store.session() as session:
        return audit.checkpoint(session, app.signer)


def public_key_pem(app: Visage) -> str:
    return app.signer.public_pem
