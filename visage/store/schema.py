"""ORM tables. The schema changes only through Alembic migrations (``migrations/``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Installation facts: schema-independent settings such as the master-key check."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class SubjectRow(Base):
    """A consenting person. Their data key lives outside the database (store.keyring)."""

    __tablename__ = "subjects"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    name_index: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consents: Mapped[list[ConsentRow]] = relationship(
        back_populates="subject", cascade="all, delete-orphan", order_by="ConsentRow.granted_at"
    )
    templates: Mapped[list[TemplateRow]] = relationship(
        back_populates="subject", cascade="all, delete-orphan", order_by="TemplateRow.created_at"
    )


class ConsentRow(Base):
    """A consent record: which purposes a subject agreed to, on what basis, until when."""

    __tablename__ = "consents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    reference: Mapped[str] = mapped_column(String(200))
    reference_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    reference_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    subject: Mapped[SubjectRow] = relationship(back_populates="consents")


class TemplateRow(Base):
    """One face template: the embedding sealed with the subject's data key. No photo."""

    __tablename__ = "templates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reference: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The aligned face crop (JPEG) the template was made from, sealed with the subject's
    data key: what a reviewer compares a probe with. Not the enrolment photo."""
    subject: Mapped[SubjectRow] = relationship(back_populates="templates")


class ApiKeyRow(Base):
    """An API key: its SHA-256 digest (the key itself is shown once), role and purposes."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    owner: Mapped[str] = mapped_column(String(200), default="", server_default="")
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    purposes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEntryRow(Base):
    """One hash-chained audit entry. Subject ids only: never a name, an image or a template."""

    __tablename__ = "audit_entries"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """An Ed25519 signature over the chain head at ``seq`` (signing key outside the DB)."""

    __tablename__ = "audit_checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class AuditPurgeRow(Base):
    """A signed marker: entries before ``before_seq`` were purged at ``at`` under ``rule``;
    ``anchor_hash`` is the hash of entry ``before_seq - 1`` the chain continues from."""

    __tablename__ = "audit_purges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    before_seq: Mapped[int] = mapped_column(Integer)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    rule: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class ErasureIntentRow(Base):
    """An erasure recorded before the subject's key is destroyed. Only a subject with such
    a record may have their erasure finished after a crash; a missing key file without
    one is an error (unmounted volume, restore in the wrong order), never an erasure."""

    __tablename__ = "erasure_intents"
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))


class EventRow(Base):
    """A recognition of an enrolled subject (identify call or camera track). Bystanders
    never have an event."""

    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    camera: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    best_score: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer, default=1)
    review_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    media_start_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Position in the clip (seconds from its start) when ``watch`` reads a file; None for
    a live source or an identify call, where only the wall-clock time means anything."""
    media_end_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class ReviewRow(Base):
    """A 1:N candidate for a watchlist purpose, waiting for two reviewers. The probe face
    crop is sealed with the candidate subject's data key, so erasure shreds it too."""

    __tablename__ = "reviews"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    camera: Mapped[str | None] = mapped_column(String(64), nullable=True)
    probe: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requester_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decisions: Mapped[list[ReviewDecisionRow]] = relationship(
        back_populates="review", cascade="all, delete-orphan", order_by="ReviewDecisionRow.at"
    )


class ReviewDecisionRow(Base):
    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("review_id", "reviewer"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    review: Mapped[ReviewRow] = relationship(back_populates="decisions")


class CameraRow(Base):
    """A camera or stream the server watches for one purpose."""

    __tablename__ = "cameras"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(1000))
    source_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    purpose: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserRow(Base):
    """A named person who signs in to the web console, with one role (and, for an
    operator, the purposes it may use). The password is kept as an argon2id hash; the TOTP
    secret, when set, is sealed with the master key."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    purposes: Mapped[list[str]] = mapped_column(JSON)
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The 30-s step of the last one-time code accepted: that code is never taken again."""
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebSessionRow(Base):
    """A signed-in browser: the SHA-256 of its session token (the token lives only in the
    HttpOnly cookie), its CSRF token and when it was last used (idle timeout)."""

    __tablename__ = "web_sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())


class SignInFailureRow(Base):
    """A failed sign-in, kept a short while for throttling (by name and by client)."""

    __tablename__ = "sign_in_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class HaltRow(Base):
    """An active stop of 1:N processing (AI Act Art. 14(4)(e)): ``all``, ``camera:<name>``
    or ``purpose:<purpose>``. Deleted when processing is explicitly resumed."""

    __tablename__ = "halts"
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class CameraLeaseRow(Base):
    """Which replica watches a camera, until when (renewed by its heartbeat): see
    :mod:`visage.store.leases`. Deleted with the camera."""

    __tablename__ = "camera_leases"
    camera_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
