"""The Ed25519 key that signs audit checkpoints and erasure certificates.

It is kept outside the database — by default ``signing.key`` (PEM, mode 0600) in the data
directory, or the file named by the ``signing_key_file`` setting, which can sit on another
volume — so that whoever can edit the database cannot forge a checkpoint. Give auditors the
public key (``visage audit pubkey``) so they can check certificates without Visage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from visage.errors import InputError, MasterKeyError

SIGNING_KEY_FILE = "signing.key"


def fingerprint(public_raw: bytes) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what ``init`` pins (see ``pin_key``)."""
    return hashlib.sha256(public_raw).hexdigest()


def key_id_of(public_raw: bytes) -> str:
    return fingerprint(public_raw)[:16]


class Signer:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id_of(self.public_raw)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    @property
    def public_pem(self) -> str:
        return (
            self._private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)


def parse_public_key(value: str) -> bytes:
    """A raw Ed25519 public key from what an auditor holds: 64 hex characters, base64 of the
    32 bytes, a PEM public key (``visage audit pubkey``), or a file with any of these."""
    text = value.strip()
    if text and "\n" not in text and len(text) < 4096 and Path(text).is_file():
        text = Path(text).read_text(errors="replace").strip()
    raw: bytes | None = None
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError:
            key = None
        if isinstance(key, Ed25519PublicKey):
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    elif len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raw = None
    if raw is None or len(raw) != 32:
        raise InputError(
            "public key: expected an Ed25519 key as 64 hex characters, base64, PEM, or a file "
            "holding one"
        )
    return raw


def verify_signature(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create(path: Path) -> Signer:
    """The signer in ``path``; a new key is created (mode 0600) if there is none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
    signer = load_existing(path)
    if signer is None:
        raise MasterKeyError(f"signing key {path} vanished while it was being created")
    return signer


def load_existing(path: Path) -> Signer | None:
    """The signer in ``path``, or None if there is no such file (nothing is created)."""
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MasterKeyError(f"signing key {path} is readable by others (mode {mode:o}); chmod 600")
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise MasterKeyError(f"signing key {path} is not a PEM private key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise MasterKeyError(f"signing key {path} is not an Ed25519 key")
    return Signer(private)
