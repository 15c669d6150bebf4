"""Retention: delete on time, and say so in the audit log (GDPR Art. 5(1)(e)).

With several replicas on one PostgreSQL database, the servers' housekeeping runs retention
one replica at a time (:func:`run_if_free`): a replica that finds the run under way on
another skips its turn instead of queueing behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import delete, select, text
from sqlalchemy.orm import selectinload

from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance import audit
from visage.governance.audit import Actor
from visage.governance.audit_ops import RetentionPurgeAudit
from visage.governance.events import purge_events
from visage.store.db import lock_key
from visage.store.schema import ReviewRow, SubjectRow

ORPHAN_KEY_AGE_S = 3600.0
"""A key file with no subject is removed once older than this (a creation that crashed)."""


class RetentionReport(BaseModel):
    ran_at: datetime
    events_deleted: int
    reviews_deleted: int
    audit_entries_dropped: int
    templates_deleted: int
    subjects_without_consent: list[str]
    orphan_keys_destroyed: int


def run(core: Visage, actor: Actor | None = None, now: datetime | None = None) -> RetentionReport:
    s = core.settings
    now = now or datetime.now(UTC)
    actor = actor or Actor.local()
    with core.store.session() as session:
        events = purge_events(session, now - timedelta(days=s.retention_events_days))
        reviews = int(
            session.execute(
                delete(ReviewRow).where(
                    ReviewRow.created_at < now - timedelta(days=s.retention_reviews_days)
                )
            ).rowcount  # type: ignore[attr-defined]
        )
        # Templates live only as long as some consent does (expiry or withdrawal).
        expired: list[str] = []
        templates = 0
        stmt = select(SubjectRow).options(
            selectinload(SubjectRow.consents), selectinload(SubjectRow.templates)
        )
        for subject in session.scalars(stmt):
            if subject.templates and not repo.has_valid_consent(subject, now):
                templates += repo.delete_templates_of(session, subject.id)
                expired.append(subject.id)
        cutoff = now - timedelta(days=s.retention_audit_days)
        dropped = audit.purge_before(
            session,
            cutoff,
            signer=core.signer,
            rule=f"retention_audit_days={s.retention_audit_days} (older than "
            f"{cutoff.date().isoformat()})",
        )
        known = set(session.scalars(select(SubjectRow.id)))
    keys = core.keyring
    orphans = [k for k in keys.subject_ids(older_than_s=ORPHAN_KEY_AGE_S) if k not in known]
    for key_id in orphans:
        keys.destroy(key_id)
    report = RetentionReport(
        ran_at=now,
        events_deleted=events,
        reviews_deleted=reviews,
        audit_entries_dropped=dropped,
        templates_deleted=templates,
        subjects_without_consent=expired,
        orphan_keys_destroyed=len(orphans),
    )
    with core.store.session() as session:
        core.audit(
            session,
            actor,
            RetentionPurgeAudit(
                events_deleted=report.events_deleted,
                reviews_deleted=report.reviews_deleted,
                audit_entries_dropped=report.audit_entries_dropped,
                templates_deleted=report.templates_deleted,
                subjects_without_consent=report.subjects_without_consent,
                orphan_keys_destroyed=report.orphan_keys_destroyed,
            ),
        )
    if templates:
        core.gallery_changed()
    if events or reviews or templates or dropped:
        core.store.scrub()
    return report


@contextmanager
def _alone(core: Visage) -> Iterator[bool]:
    """Whether this process may run retention now: on PostgreSQL, whether it got the
    session-level advisory lock ``retention`` (``pg_try_advisory_lock``, held on a
    connection of its own until the block ends, released by the server if the process
    dies); on SQLite always (one machine, and the run's writes are serialised anyway)."""
    store = core.store
    if not store.is_postgresql:
        yield True
        return
    key = {"k": lock_key("retention")}
    with store.engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), key).scalar_one())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), key)
                conn.commit()


def run_if_free(
    core: Visage, actor: Actor | None = None, now: datetime | None = None
) -> RetentionReport | None:
    """:func:`run`, unless another replica is running it right now (then None)."""
    with _alone(core) as free:
        return run(core, actor, now) if free else None
