"""Per-subject data keys, kept outside the database so that erasure can shred them.

Each subject's 256-bit data key is stored wrapped by the master key (AES key wrap) in its own
file, ``keys/<subject id>.key`` in the data directory — never in the database. A database
backup therefore holds only ciphertext: once a subject's key file is destroyed (overwritten
with random bytes, flushed, unlinked), every copy of their templates and snapshots, backups
included, is unreadable. Back the key directory up on its own, shorter, schedule.

The same directory holds the key of the on-disk index cache (``_index.key``); it is replaced
after each erasure so that an old copy of the cache cannot be opened either.

A subject row whose key file is missing is erased only if the erasure was recorded first
(``erasure_intents``, see :mod:`visage.governance.erasure`): then it is finished at the next
start. Without that record a missing key file is an installation error (exit 3) and nothing
is deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import unicodedata
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from visage.errors import VisageError
from visage.store import crypto

KEYS_DIR = "keys"
_ID = re.compile(r"^[0-9a-f]{32}$|^_index$")

NAME_INDEX = "visage-name-index"
"""HKDF label of the key of ``subjects.name_index`` (blind index for exact name look-up)."""
REFERENCE_INDEX = "visage-consent-reference-index"
"""HKDF label of the key of ``consents.reference_index``."""
REFERENCE_AUDIT = "visage-consent-reference-audit"
"""HKDF label of the key that hashes consent references in audit entries."""
CAMERA_SOURCE = "visage camera source"
"""HKDF label of the key that seals camera source URLs (``cameras.source_sealed``)."""


def derive_key(master: bytes, label: str) -> bytes:
    """A 256-bit key for one use, derived from the master key (HKDF-SHA256, ``label`` as
    info): a blind index never uses the master key itself."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(master)


def normalise_text(value: str) -> str:
    """What a blind index hashes: NFKC, whitespace collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFKC", value).split()).casefold()


def blind_index(key: bytes, value: str) -> str:
    """HMAC-SHA256 of the normalised value, hex: equal values give equal indexes, and
    without the key the index says nothing about the value."""
    return hmac.new(key, normalise_text(value).encode(), hashlib.sha256).hexdigest()


class KeyDestroyedError(VisageError):
    """The key of this subject was destroyed: their data is erased."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Keyring:
    def __init__(self, home: Path, master: bytes) -> None:
        self.dir = home / KEYS_DIR
        self._master = master

    def _path(self, key_id: str) -> Path:
        if not _ID.match(key_id):
            raise ValueError(f"not a key id: {key_id!r}")
        return self.dir / f"{key_id}.key"

    def _write(self, key_id: str, key: bytes) -> None:
        self.dir.mkdir(mode=0o700, exist_ok=True)
        path = self._path(key_id)
        tmp = path.with_suffix(".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, crypto.wrap(self._master, key))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(self.dir)

    def create(self, key_id: str) -> bytes:
        """A new random key, durably on disk before it is used for anything."""
        key = crypto.new_key()
        self._write(key_id, key)
        return key

    def get(self, key_id: str) -> bytes:
        path = self._path(key_id)
        try:
            wrapped = path.read_bytes()
        except FileNotFoundError:
            raise KeyDestroyedError(f"the data key of {key_id} was destroyed") from None
        return crypto.unwrap(self._master, wrapped)

    def exists(self, key_id: str) -> bool:
        return self._path(key_id).is_file()

    def destroy(self, key_id: str) -> bool:
        """Overwrite the wrapped key with random bytes, flush, unlink. True if it existed."""
        path = self._path(key_id)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            size = os.fstat(fd).st_size
            os.write(fd, os.urandom(max(size, 64)))
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)  # a concurrent destroy (another core) unlinked it first
        _fsync_dir(self.dir)
        return True

    def rotate(self, key_id: str) -> bytes:
        """Destroy the key and make a new one (the index cache key after an erasure)."""
        self.destroy(key_id)
        return self.create(key_id)

    def get_or_create(self, key_id: str) -> bytes:
        try:
            return self.get(key_id)
        except KeyDestroyedError:
            return self.create(key_id)

    def blind(self, label: str, value: str) -> str:
        """:func:`blind_index` of ``value`` under the key derived for ``label``."""
        return blind_index(derive_key(self._master, label), value)

    def subject_ids(self, older_than_s: float = 0.0) -> set[str]:
        """Ids with a key file (at least ``older_than_s`` old): to find orphans."""
        if not self.dir.is_dir():
            return set()
        limit = time.time() - older_than_s
        return {
            p.stem
            for p in self.dir.glob("*.key")
            if p.stem != "_index" and p.stat().st_mtime <= limit
        }
