"""The search index of a data directory, kept in step with the store.

The index holds every template (decrypted) so that a search costs no decryption; consent is
applied per search through the ``allowed`` subjects. It is cached on disk, encrypted with
AES-256-GCM under the keyring's index key, and tagged with the store's gallery version: a
cache from another version is ignored and rebuilt from the sealed templates. After an
erasure the subject's rows are deleted from the index (or the index rebuilt without them
when it was not current) and the index key replaced, so no copy of an older cache (in a
backup, say) can be opened any more.
Changes made through this object (enrolment, erasure) update the index in memory at once.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Collection
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from visage.errors import MasterKeyError
from visage.gallery import repository as repo
from visage.gallery.index import Hit, VectorIndex, from_bytes, make_index
from visage.store import crypto
from visage.store.db import Store
from visage.store.keyring import Keyring

CACHE_FILE = "index.bin"
INDEX_KEY = "_index"


class LiveGallery:
    def __init__(
        self, store: Store, keys: Keyring, model_id: str, home: Path, build_threads: int = 0
    ) -> None:
        self.store, self.keys, self.model_id = store, keys, model_id
        self.build_threads = build_threads
        self.path = home / CACHE_FILE
        self._lock = threading.RLock()
        self._index: VectorIndex | None = None
        self._version = -1

    def _current_version(self) -> int:
        with self.store.session() as session:
            return repo.gallery_version(session)

    def _load_cache(self, version: int) -> VectorIndex | None:
        if not self.path.is_file():
            return None
        blob = self.path.read_bytes()
        if int.from_bytes(blob[:8], "big") != version:
            return None
        try:
            raw = crypto.open_sealed(self.keys.get_or_create(INDEX_KEY), blob[8:], blob[:8])
            return from_bytes(raw, self.build_threads)
        except (MasterKeyError, ValueError, OSError):
            return None  # unreadable cache: rebuild from the store

    def _save_cache(self, index: VectorIndex, version: int) -> None:
        head = version.to_bytes(8, "big")
        blob = head + crypto.seal(self.keys.get_or_create(INDEX_KEY), index.to_bytes(), head)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, self.path)

    def index(self) -> VectorIndex:
        """The index, current with the store (rebuilt if another process changed it)."""
        with self._lock:
            version = self._current_version()
            if self._index is not None and version == self._version:
                return self._index
            index = self._load_cache(version)
            if index is None:
                index = self._build_and_save(version)
            self._index, self._version = index, version
            return index

    def _build_and_save(self, version: int) -> VectorIndex:
        with self.store.session() as session:
            labels, vectors = repo.all_templates(session, self.keys, self.model_id)
        index = make_index(labels, vectors, build_threads=self.build_threads)
        self._save_cache(index, version)
        return index

    def erased(self, subject_id: str) -> None:
        """Delete the subject's rows from the index (the engines delete, they keep no
        tombstone) or, if the index is not current, build it afresh from the store; then
        save it under a new cache key, so an older copy of the cache is unreadable."""
        with self._lock:
            self.keys.rotate(INDEX_KEY)
            version = self._current_version()
            if self._index is not None and version == self._version + 1:
                self._index.remove(subject_id)
                self._save_cache(self._index, version)
                self._version = version
            else:
                self._index, self._version = self._build_and_save(version), version

    def search(
        self, queries: NDArray[np.float32], k: int, allowed: Collection[str]
    ) -> list[list[Hit]]:
        if len(queries) == 0:
            return []
        return self.index().search(queries, k, allowed)

    def added(self, subject_id: str, vector: NDArray[np.float32], version: int) -> None:
        """A template was committed as ``version``: add it now so the next search sees it.
        If other changes came in between, the index is rebuilt on next use instead."""
        with self._lock:
            if self._index is not None and version == self._version + 1:
                self._index.add([subject_id], vector[None, :])
                self._version = version
                self._save_cache(self._index, version)
            else:
                self._index = None

    def invalidate(self) -> None:
        """Forget the index; the next search rebuilds it from the store."""
        with self._lock:
            self._index = None


def discard_cache(home: Path, keys: Keyring) -> None:
    """After an erasure with no index in memory: make any cached index unreadable (its key
    is destroyed) and remove it; the next search rebuilds it from the store."""
    keys.destroy(INDEX_KEY)
    (home / CACHE_FILE).unlink(missing_ok=True)
