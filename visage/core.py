"""The configured application object: settings, models and store, created once, shared.

This is the only long-lived state in Visage. Every interface (CLI, API, web) builds one
``Visage`` and calls the use-cases in :mod:`visage.usecases` with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from visage.config import Settings
from visage.errors import MasterKeyError, NotInitialisedError
from visage.gallery.matching import DEFAULT_THRESHOLD, Calibration
from visage.notify import Notifier

if TYPE_CHECKING:
    # Each part is imported by the member that builds it, so that a command loads only
    # what it uses: `subject list` and `audit verify` no model runtime (ONNX Runtime,
    # OpenCV, FAISS: a second), `eval`, `detect` and `verify` before `visage init` no
    # store (SQLAlchemy, the schema, the audit models: half a second).
    from sqlalchemy.orm import Session

    from visage.gallery.eligibility import EligibilityCache
    from visage.gallery.live import LiveGallery
    from visage.governance import signing
    from visage.governance.audit import Actor, Checkpoint
    from visage.governance.audit_ops import AuditPayload
    from visage.media.image import LoadedImage
    from visage.store.db import Store
    from visage.store.keyring import Keyring
    from visage.store.schema import AuditEntryRow
    from visage.vision.pipeline import FaceAnalyzer

ImageInput = Path | str | bytes
"""A path to an image file, or the image's bytes (an upload)."""

KEY_CHECK = "master_key_check"
ACTIVE_MODEL = "active_model"
"""``meta`` key: the embedder setting ``visage models migrate --confirm`` switched to."""
_NO_KEY_CHECK = "the data directory has no master-key check: initialise it again"


class Service(Protocol):
    """Long-lived state a use-case keeps per core (the camera supervisor): made on first use,
    closed when the core closes."""

    def close(self) -> None: ...


ServiceT = TypeVar("ServiceT", bound=Service)


class Visage:
    """The core: one configured Visage installation — settings, the lazily loaded models,
    the store and keys, the live gallery, the audit signer, the notifier and long-lived
    services (cameras). Every door (CLI, API, web) builds one and passes it to the
    use-cases in :mod:`visage.usecases`; nothing else holds state. Thread-safe: lazy
    members are created once under a lock.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._lock = threading.Lock()
        self._analyzer: FaceAnalyzer | None = None
        self._store: Store | None = None
        self._master: bytes | None = None
        self._gallery: LiveGallery | None = None
        self._signer: signing.Signer | None = None
        self._eligibility: EligibilityCache | None = None
        self._calibration: Calibration | None = None
        self._calibration_raw: bytes | None = None
        self._calibration_checked = 0.0
        self.calibration_recheck_s = 5.0
        """How often (seconds) the stored calibration is compared with the one in use, so
        that a replica sharing the database picks up ``visage eval --calibrate`` run
        elsewhere without a restart (one small ``meta`` read)."""
        self._embedder: str | None = None
        s = self.settings
        self.notifier = Notifier(s.webhook_urls, s.webhook_secret, s.mqtt_url, s.mqtt_topic)
        self._services: dict[type[Service], Service] = {}
        self._services_lock = threading.Lock()

    @property
    def eligibility(self) -> EligibilityCache:
        """Who may be matched for a purpose: ``core.eligibility.get(session, purpose)``."""
        if self._eligibility is None:
            with self._lock:
                if self._eligibility is None:
                    from visage.gallery.eligibility import EligibilityCache

                    self._eligibility = EligibilityCache()
        return self._eligibility

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def embedder(self) -> str:
        """The active embedder's setting (``dlib-resnet``, ``sface``, ``onnx:/path``): the
        ``embedder`` setting, else the data dir's active model (``visage models migrate
        --confirm``), else ``dlib-resnet``."""
        if self._embedder is None:
            from visage.vision.embedders import DEFAULT_EMBEDDER

            chosen = self.settings.embedder
            if chosen is None and self.initialised:
                from visage.store.meta import get_meta

                with self.store.session() as session:
                    stored = get_meta(session, ACTIVE_MODEL)
                chosen = None if stored is None else stored.decode()
            self._embedder = chosen or DEFAULT_EMBEDDER
        return self._embedder

    @property
    def model_id(self) -> str:
        """The active model's id (its embedding space), known without loading any model."""
        if self._analyzer is not None:
            return self._analyzer.model_id
        from visage.vision.embedders import model_id_of

        return model_id_of(self.embedder)

    @property
    def calibration(self) -> Calibration:
        """How the active model's cosines become scores: the calibration fitted on this
        installation's labelled pairs (``visage eval --calibrate``), else the built-in one.
        Read again when the stored one changed (checked every ``calibration_recheck_s``)."""
        found = self._calibration
        now = time.monotonic()
        if found is not None and now - self._calibration_checked < self.calibration_recheck_s:
            return found
        from visage.gallery.matching import built_in_calibration, calibration_key

        model_id = self.model_id
        stored = None
        if self.initialised:
            from visage.store.meta import get_meta

            with self.store.session() as session:
                stored = get_meta(session, calibration_key(model_id))
        if found is None or stored != self._calibration_raw or found.model_id != model_id:
            parsed = None if stored is None else Calibration.model_validate_json(stored)
            found = parsed or built_in_calibration(model_id)
            self._calibration, self._calibration_raw = found, stored
        self._calibration_checked = now
        return found

    def calibration_changed(self) -> None:
        """A calibration was stored: read it again on next use."""
        self._calibration = None

    @property
    def threshold(self) -> float:
        """``match_threshold`` if set; else the active model's threshold for ``target_fmr``
        from its calibration table; else (nothing measured) the built-in default."""
        t = self.settings.match_threshold
        if t is not None:
            return t
        fitted = self.calibration.threshold_for(self.settings.target_fmr)
        return DEFAULT_THRESHOLD if fitted is None else fitted

    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            embedder = self.embedder  # may open the store: not under the lock
            with self._lock:
                if self._analyzer is None:
                    from visage.vision.pipeline import FaceAnalyzer, PipelineOptions

                    s = self.settings
                    self._analyzer = FaceAnalyzer(
                        PipelineOptions(
                            detect_threshold=s.detect_threshold,
                            max_side=s.detect_max_side,
                            min_side=s.detect_min_side,
                            threads=s.num_threads,
                            cache_dir=s.cache_dir,
                            embedder=embedder,
                        )
                    )
        return self._analyzer

    def load_image(self, image: ImageInput) -> LoadedImage:
        from visage.media.image import decode_image, read_image_file

        s = self.settings
        if isinstance(image, bytes):
            return decode_image(image, max_pixels=s.max_pixels, max_bytes=s.max_bytes)
        return read_image_file(image, max_pixels=s.max_pixels, max_bytes=s.max_bytes)

    # -- store and keys -------------------------------------------------------------

    @property
    def key_path(self) -> Path:
        from visage.store import crypto

        return self.home / crypto.KEY_FILE

    def _read_master(self) -> bytes:
        from visage.store import crypto

        if self.settings.master_key:
            return crypto.parse_key(self.settings.master_key)
        return crypto.read_key_file(self.key_path)

    @property
    def store(self) -> Store:
        """The opened, migrated store whose key check the master key passes."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from visage.store import crypto
                    from visage.store.db import open_store
                    from visage.store.schema import Meta

                    store = open_store(self.home, create=False, url=self.settings.database_url)
                    master = self._read_master()
                    try:
                        with store.session() as session:
                            check = session.get(Meta, KEY_CHECK)
                            if check is None:
                                raise MasterKeyError(_NO_KEY_CHECK)
                            crypto.verify_key_check(master, check.value)
                        self._finish_interrupted_erasures(store, master)
                    except BaseException:
                        store.close()
                        raise
                    self._master, self._store = master, store
                    self._seal_plaintext_names()
        return self._store

    def _finish_interrupted_erasures(self, store: Store, master: bytes) -> None:
        """Before the store is handed to anyone, and exactly once per core (under the lock):
        finish the erasures whose intent was recorded; refuse when key files are missing
        without one (see :mod:`visage.governance.erasure`)."""
        from visage.governance.erasure import Eraser
        from visage.store.keyring import Keyring

        keys = Keyring(self.home, master)
        Eraser(
            store=store,
            keys=keys,
            signer=self.signer,
            audit=self.audit,
            home=self.home,
            drop_from_index=lambda _subject_id: _discard_cache(self.home, keys),
        ).finish_interrupted()

    def _seal_plaintext_names(self) -> None:
        # A data dir written before names and consent references were sealed: seal them now
        # and leave no plaintext copy in the write-ahead log.
        from visage.gallery import repository

        assert self._store is not None
        with self._store.session() as session:
            sealed = repository.seal_plaintext(session, self.keyring)
        if sealed:
            self._store.scrub()

    @property
    def master_key(self) -> bytes:
        _ = self.store
        assert self._master is not None
        return self._master

    @property
    def keyring(self) -> Keyring:
        """Subjects' data keys (outside the database, see :mod:`visage.store.keyring`)."""
        from visage.store.keyring import Keyring

        return Keyring(self.home, self.master_key)

    @property
    def signer(self) -> signing.Signer:
        if self._signer is None:
            from visage.governance import signing

            path = self.settings.signing_key_file or self.home / signing.SIGNING_KEY_FILE
            self._signer = signing.load_or_create(path)
        return self._signer

    def audit(self, session: Session, actor: Actor, payload: AuditPayload) -> AuditEntryRow:
        """Append ``payload`` (one model of :mod:`visage.governance.audit_ops`) to the audit
        chain inside ``session``'s transaction."""
        from visage.governance import audit as audit_log

        return audit_log.append(
            session,
            actor,
            payload,
            signer=self.signer,
            checkpoint_every=self.settings.audit_checkpoint_every,
            on_signed=self.witness_head,
        )

    @property
    def initialised(self) -> bool:
        """Whether there is Visage data to work with (``visage init`` was run): the SQLite
        file in the data dir, checked without opening it, or the database at
        ``database_url``. Creates nothing."""
        if self.settings.database_url is None:
            from visage.store import DB_FILE

            return (self.home / DB_FILE).is_file()
        try:
            _ = self.store
        except NotInitialisedError:
            return False
        return True

    def audit_if_initialised(self, actor: Actor, payload: AuditPayload) -> bool:
        """Audit ``payload`` in a transaction of its own, or, with no data at all (before
        ``visage init``), audit nothing and return False: the commands that need no gallery
        (detect, verify) work on a fresh install, and their door says the run was not
        audited. Where there is data, a failure to audit is an error as always."""
        if not self.initialised:
            return False
        with self.store.session() as session:
            self.audit(session, actor, payload)
        return True

    @property
    def witness_path(self) -> Path:
        """``audit_witness``, else ``witness/audit-head.json`` in the data dir."""
        from visage.governance import witness

        return self.settings.audit_witness or self.home / witness.WITNESS_DIR / witness.WITNESS_FILE

    def witness_head(self, head: Checkpoint) -> None:
        """A signed head was committed: witness it outside the database (file, webhooks)."""
        from visage.governance import witness

        signer = self.signer
        if witness.publish(self.witness_path, head, signer.public_raw):
            payload = head.model_dump(mode="json") | {"key_fingerprint": signer.fingerprint}
            self.notifier.send("audit.head", payload)

    @property
    def gallery(self) -> LiveGallery:
        """The search index over the active model's templates, shared by all calls of this
        core."""
        if self._gallery is None:
            store = self.store
            model_id = self.analyzer.model_id  # built outside the lock it takes
            with self._lock:
                if self._gallery is None:
                    from visage.gallery.live import LiveGallery

                    self._gallery = LiveGallery(
                        store,
                        self.keyring,
                        model_id,
                        self.home,
                        build_threads=self.settings.num_threads,
                    )
        return self._gallery

    def gallery_erased(self, subject_id: str) -> None:
        """A subject was erased: no copy of their templates may remain in the index, in
        memory or in its cache (see :mod:`visage.gallery.live`)."""
        if self._gallery is not None:
            self._gallery.erased(subject_id)
        else:
            _discard_cache(self.home, self.keyring)

    def gallery_changed(self, subject_id: str | None = None) -> None:
        """Templates were deleted (of ``subject_id``, or of anyone): no copy of them may
        remain in the index, in memory or in its cache, so the cache is rewritten under a new
        key now (or, with no index in memory, made unreadable and removed)."""
        if self._gallery is None:
            _discard_cache(self.home, self.keyring)
        elif subject_id is None:
            self._gallery.rewrite()
        else:
            self._gallery.templates_deleted(subject_id)

    def service(self, kind: type[ServiceT], make: Callable[[Visage], ServiceT]) -> ServiceT:
        """The core's one ``kind``, made by ``make(core)`` on first use and shared by every
        door (CLI, API, web). This is how a use-case owns state for the core's whole life —
        the camera supervisor — without the core importing use-cases."""
        with self._services_lock:
            found = self._services.get(kind)
            if found is None:
                found = self._services[kind] = make(self)
        return cast(ServiceT, found)

    def close(self) -> None:
        # Services first (camera workers send their last events), then the notifier flushes.
        with self._services_lock:
            services = list(self._services.values())
            self._services.clear()
        for service in services:
            service.close()
        self.notifier.close()
        if self._store is not None:
            self._store.close()
            self._store = None


def _discard_cache(home: Path, keys: Keyring) -> None:
    from visage.gallery.live import discard_cache

    discard_cache(home, keys)
