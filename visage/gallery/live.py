"""The search index of a data directory, kept in step with the store.

The index holds every template (decrypted) so that a search costs no decryption; consent is
applied per search through the ``allowed`` subjects. It is cached on disk, encrypted with
AES-256-GCM under the keyring's index key, and tagged with the store's gallery version: a
cache from a later version is ignored and the index rebuilt from the sealed templates.
Enrolments are appended to a journal (``index.journal``, each record sealed under the same
key and tagged with its version) instead of rewriting the whole snapshot, which costs
seconds at a million templates; loading replays the journal onto the snapshot, and any
change the journal can't replay (a deletion) means a rebuild. After any deletion of
templates (erasure, consent withdrawal, template deletion, retention) the snapshot is
rewritten at once without them (the subject's rows deleted from the index, or the index
rebuilt when it was not current) and the index key replaced, so no copy of an older cache or
journal (in a backup, say) can be opened any more.
Changes made through this object (enrolment, deletion) update the index in memory at once.

Replicas (several processes on one PostgreSQL database and one shared data dir): every search
reads the store's gallery version (one small read), so a change committed by any process is
seen by the next search of every other. An index that is behind catches up from the journal
when it holds every missing enrolment (a read of the journal, not the snapshot), else reloads
the snapshot plus journal, else rebuilds from the sealed templates; an erasure or withdrawal
is never in the journal, so it always means a reload or a rebuild without the subject. The
cache files are shared safely: the snapshot is replaced atomically (a temporary file renamed
over it), each journal record is one append, and every record and snapshot is sealed with
its version as associated data, so a file another process rewrote or cut short can only make
a load fall back to a rebuild, never return a wrong index. Version bumps are serialised
across processes (:func:`visage.gallery.repository.bump_gallery_version`), so each version
names exactly one change.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Collection
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from visage.errors import MasterKeyError
from visage.gallery import repository as repo
from visage.gallery.index import Hit, VectorIndex, from_bytes, make_index
from visage.store import crypto
from visage.store.db import Store
from visage.store.keyring import Keyring
from visage.store.schema import TemplateRow
from visage.vision.spec import DLIB_ID

CACHE_FILE = "index.bin"
JOURNAL_FILE = "index.journal"
INDEX_KEY = "_index"
_VERSION = 8
_LENGTH = 4


def _journal_limit(size: int) -> int:
    """Enrolments kept in the journal before the snapshot is rewritten: 1 % of the gallery
    (at least 256), so that rewriting it (4.5 s at 1M templates) is amortised to well under a
    millisecond an enrolment while replaying the journal stays cheap."""
    return max(256, size // 100)


class LiveGallery:
    """The one search index of a data directory, shared by every call of a core.

    Built lazily from the sealed templates (or loaded from its encrypted cache plus journal),
    then kept in step: enrolments are added in memory and journalled, deletions remove the
    rows at once and rewrite the cache under a new key. It knows nothing of consent: callers
    pass the subjects allowed for their purpose to :meth:`search`. Thread-safe.
    """

    def __init__(
        self, store: Store, keys: Keyring, model_id: str, home: Path, build_threads: int = 0
    ) -> None:
        self.store, self.keys, self.model_id = store, keys, model_id
        self.build_threads = build_threads
        self.path = home / CACHE_FILE
        self.journal = home / JOURNAL_FILE
        self._lock = threading.RLock()
        self._index: VectorIndex | None = None
        self._version = -1
        self._journalled = 0

    def _aad(self, head: bytes) -> bytes:
        """What the cache and journal records are sealed with: their version and, for any
        model but the default, the model id, so that an index of one model is never loaded
        as another's (it fails to open and is rebuilt from the active model's templates)."""
        return head if self.model_id == DLIB_ID else head + b"|" + self.model_id.encode()

    def _current_version(self) -> int:
        with self.store.session() as session:
            return repo.gallery_version(session)

    def _load_cache(self, version: int) -> VectorIndex | None:
        """The snapshot, brought to ``version`` by the journal; None if they can't reach it."""
        if not self.path.is_file():
            return None
        blob = self.path.read_bytes()
        head = blob[:_VERSION]
        snapshot = int.from_bytes(head, "big")
        if snapshot > version:
            return None
        try:
            key = self.keys.get_or_create(INDEX_KEY)
            index = from_bytes(
                crypto.open_sealed(key, blob[_VERSION:], self._aad(head)), self.build_threads
            )
            added = self._read_journal(key) if snapshot < version else {}
        except (MasterKeyError, ValueError, OSError):
            return None  # unreadable cache: rebuild from the store
        steps = range(snapshot + 1, version + 1)
        if any(step not in added for step in steps):  # a change other than an enrolment
            return None
        if steps:
            index.add([added[s][0] for s in steps], np.stack([added[s][1] for s in steps]))
        self._journalled = len(steps)
        return index

    def _save_cache(self, index: VectorIndex, version: int) -> None:
        """Write a snapshot of the whole index and start an empty journal."""
        head = version.to_bytes(_VERSION, "big")
        sealed = crypto.seal(self.keys.get_or_create(INDEX_KEY), index.to_bytes(), self._aad(head))
        blob = head + sealed
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, self.path)
        self.journal.unlink(missing_ok=True)
        self._journalled = 0

    def _append_journal(self, version: int, label: str, vector: NDArray[np.float32]) -> None:
        """One sealed record per enrolment: ``version | length | seal(label, vector)``,
        written in one call to a file opened for appending (so processes don't interleave)."""
        head = version.to_bytes(_VERSION, "big")
        name = label.encode()
        payload = len(name).to_bytes(1, "big") + name + vector.astype("<f4").tobytes()
        sealed = crypto.seal(self.keys.get_or_create(INDEX_KEY), payload, self._aad(head))
        with open(self.journal, "ab") as fh:
            fh.write(head + len(sealed).to_bytes(_LENGTH, "big") + sealed)
        self._journalled += 1

    def _read_journal(self, key: bytes) -> dict[int, tuple[str, NDArray[np.float32]]]:
        """Records by version. A torn last record (a crash mid-append) ends the journal."""
        if not self.journal.is_file():
            return {}
        data, at, out = self.journal.read_bytes(), 0, {}
        while at + _VERSION + _LENGTH <= len(data):
            head = data[at : at + _VERSION]
            size = int.from_bytes(data[at + _VERSION : at + _VERSION + _LENGTH], "big")
            start = at + _VERSION + _LENGTH
            if start + size > len(data):
                break
            payload = crypto.open_sealed(key, data[start : start + size], self._aad(head))
            name_len = payload[0]
            label = payload[1 : 1 + name_len].decode()
            vector = np.frombuffer(payload[1 + name_len :], "<f4").astype(np.float32)
            out[int.from_bytes(head, "big")] = (label, vector)
            at = start + size
        return out

    def index(self) -> VectorIndex:
        """The index, current with the store (caught up or reloaded if another process
        changed it)."""
        with self._lock:
            version = self._current_version()
            if self._index is not None and version == self._version:
                return self._index
            if self._index is not None and version > self._version and self._catch_up(version):
                return self._index
            index = self._load_cache(version)
            if index is None:
                index = self._build_and_save(version)
            self._index, self._version = index, version
            return index

    def _catch_up(self, version: int) -> bool:
        """Add the enrolments another process journalled since this index's version; False
        (nothing changed) unless the journal holds every one of them."""
        assert self._index is not None
        try:
            added = self._read_journal(self.keys.get_or_create(INDEX_KEY))
        except (MasterKeyError, ValueError, OSError):
            return False
        steps = range(self._version + 1, version + 1)
        if any(step not in added for step in steps):
            return False
        self._index.add([added[s][0] for s in steps], np.stack([added[s][1] for s in steps]))
        self._version = version
        return True

    def _build_and_save(self, version: int) -> VectorIndex:
        with self.store.session() as session:
            labels, vectors = repo.all_templates(session, self.keys, self.model_id)
        index = make_index(labels, vectors, build_threads=self.build_threads)
        self._save_cache(index, version)
        return index

    def erased(self, subject_id: str) -> None:
        """The subject was erased: see :meth:`templates_deleted`."""
        self.templates_deleted(subject_id)

    def templates_deleted(self, subject_id: str) -> None:
        """Templates of the subject were deleted (all of them by an erasure or a consent
        withdrawal, one by a template deletion) in the change that made the store's current
        version. Delete the subject's rows from the index as it was just before that change
        (the engines delete, they keep no tombstone), put back the templates the store still
        holds for them, or build the index afresh from the store if that state is not at
        hand; then save it under a new cache key and drop the journal, so that no older
        copy of the cache or journal can be opened any more."""
        with self._lock:
            with self.store.session() as session:
                version = repo.gallery_version(session)
                kept = self._templates_of(session, subject_id)
            before = self._index if self._version == version - 1 else None
            if before is None:
                before = self._load_cache(version - 1)
            self.keys.rotate(INDEX_KEY)
            if before is None:
                self._index, self._version = self._build_and_save(version), version
                return
            before.remove(subject_id)
            if kept:
                before.add([subject_id] * len(kept), np.stack(kept))
            self._save_cache(before, version)
            self._index, self._version = before, version

    def _templates_of(self, session: Session, subject_id: str) -> list[NDArray[np.float32]]:
        """The subject's templates of this model, decrypted (none once they are erased)."""
        stmt = select(TemplateRow).where(
            TemplateRow.subject_id == subject_id, TemplateRow.model_id == self.model_id
        )
        rows = list(session.scalars(stmt))
        if not rows:
            return []
        key = self.keys.get(subject_id)
        return [
            np.frombuffer(
                crypto.open_sealed(key, t.sealed, repo._aad(subject_id, t.id, t.model_id)),
                dtype="<f4",
            ).astype(np.float32)
            for t in rows
        ]

    def rewrite(self) -> None:
        """Templates of several subjects were deleted (retention): rebuild the index from
        the store and save it under a new cache key, dropping the journal."""
        with self._lock:
            version = self._current_version()
            self.keys.rotate(INDEX_KEY)
            self._index, self._version = self._build_and_save(version), version

    def search(
        self, queries: NDArray[np.float32], k: int, allowed: Collection[str]
    ) -> list[list[Hit]]:
        if len(queries) == 0:
            return []
        return self.index().search(queries, k, allowed)

    def added(self, subject_id: str, vector: NDArray[np.float32], version: int) -> None:
        """A template was committed as ``version``: add it now so the next search sees it,
        and journal it (the snapshot is rewritten once the journal is long). If other
        changes came in between, the index is reloaded on next use instead."""
        with self._lock:
            if self._index is not None and version == self._version + 1:
                self._index.add([subject_id], vector[None, :])
                self._version = version
                if self._journalled >= _journal_limit(len(self._index)):
                    self._save_cache(self._index, version)
                else:
                    self._append_journal(version, subject_id, vector)
            else:
                self._index = None

    def invalidate(self) -> None:
        """Forget the index; the next search reloads or rebuilds it."""
        with self._lock:
            self._index = None


def discard_cache(home: Path, keys: Keyring) -> None:
    """After a deletion with no index in memory: make any cached index and journal
    unreadable (their key is destroyed) and remove them; the next search rebuilds."""
    keys.destroy(INDEX_KEY)
    (home / CACHE_FILE).unlink(missing_ok=True)
    (home / JOURNAL_FILE).unlink(missing_ok=True)
