"""The witness file: the newest signed audit head, kept outside the database.

Whoever can edit the database can delete the newest entries (and their checkpoints) or wipe
the whole log, and the chain that is left is still a valid chain. The witness remembers how
far the chain reached: every newly signed head (seq, hash, time, signature) is written here,
atomically, and ``visage audit verify`` requires the chain to reach it. The file also holds the
signing key pinned at ``init`` (its public key and SHA-256 fingerprint).

It is only as strong as its place: by default it sits in the data directory
(``witness/audit-head.json``), which protects against edits of the database alone; put it on
another volume or host (``VISAGE_AUDIT_WITNESS``), and/or have the webhooks (which receive each
head as ``audit.head``) keep a copy, to survive an attacker who controls the whole directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ValidationError

from visage.errors import VisageError
from visage.governance import signing
from visage.governance.audit import Checkpoint

WITNESS_DIR = "witness"
WITNESS_FILE = "audit-head.json"

_lock = threading.Lock()


class WitnessError(VisageError):
    """The witness file exists but cannot be read or belongs to another signing key."""

    exit_code = 3


class Witness(BaseModel):
    version: int = 1
    key_fingerprint: str
    """SHA-256 (hex) of the raw Ed25519 public key pinned at init."""
    public_key: str
    """The raw public key, hex: lets an auditor check without the private key file."""
    head: Checkpoint | None = None
    """The newest signed head; None until the first checkpoint."""

    def public_raw(self) -> bytes | None:
        """The public key, if it really has the recorded fingerprint."""
        try:
            raw = bytes.fromhex(self.public_key)
        except ValueError:
            return None
        return raw if signing.fingerprint(raw) == self.key_fingerprint else None


def read(path: Path) -> Witness | None:
    """The witness in ``path``; None if there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WitnessError(f"audit witness {path} cannot be read: {exc.strerror}") from exc
    try:
        return Witness.model_validate_json(data)
    except ValidationError as exc:
        raise WitnessError(f"audit witness {path} is not a witness file") from exc


def ensure(path: Path, public_raw: bytes) -> Witness:
    """Create the witness for this signing key if there is none; refuse one that pins
    another key (a witness shared between data dirs, or a swapped key)."""
    with _locked(path):
        current = read(path)
        if current is None:
            current = Witness(
                key_fingerprint=signing.fingerprint(public_raw), public_key=public_raw.hex()
            )
            _write(path, current)
        elif current.key_fingerprint != signing.fingerprint(public_raw):
            raise WitnessError(
                f"audit witness {path} pins another signing key "
                f"({current.key_fingerprint[:16]}, not {signing.key_id_of(public_raw)})"
            )
        return current


def publish(path: Path, head: Checkpoint, public_raw: bytes) -> bool:
    """Record ``head`` if it is newer than the witnessed one and signed by the witnessed key.
    Returns whether the file changed."""
    fp = signing.fingerprint(public_raw)
    with _locked(path):
        current = read(path) or Witness(key_fingerprint=fp, public_key=public_raw.hex())
        if current.key_fingerprint != fp:
            return False  # signed by a key that is not pinned: verify will say so
        if current.head is not None and current.head.seq >= head.seq:
            return False
        _write(path, current.model_copy(update={"head": head}))
        return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time, across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(path: Path, witness: Witness) -> None:
    """Atomically: a temporary file beside it, fsynced, renamed over it, directory fsynced,
    so that a crash leaves the old witness or the new one, never a torn one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(witness.model_dump_json(indent=2).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # not secret: an outside monitor may read it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
