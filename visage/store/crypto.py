"""Envelope encryption for templates.

A 256-bit master key lives outside the database (key file, mode 0600, or the
``VISAGE_MASTER_KEY`` variable). Each subject has its own random data key, stored only
wrapped by the master key (AES key wrap, RFC 3394). Templates are sealed with AES-256-GCM
under the subject's data key, bound to their ids as associated data so that a ciphertext
cannot be moved to another row. Destroying a subject's wrapped key makes every copy of
their templates, backups included, unreadable (crypto-shredding).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from visage.errors import MasterKeyError, MasterKeyMissingError

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE = "master.key"
_CHECK_PLAINTEXT = b"visage master key check v1"


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def parse_key(text: str) -> bytes:
    """A key given as 64 hex characters or urlsafe base64 of 32 bytes."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 2 * KEY_BYTES else base64.urlsafe_b64decode(text)
    except (ValueError, binascii.Error) as exc:
        raise MasterKeyError("master key is not valid hex or base64") from exc
    if len(raw) != KEY_BYTES:
        raise MasterKeyError(f"master key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def create_key_file(path: Path) -> bytes:
    """Write a new random key to ``path`` with mode 0600; fail if it exists."""
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def read_key_file(path: Path) -> bytes:
    if not path.is_file():
        raise MasterKeyMissingError(
            f"no master key at {path}; initialise the data directory or set VISAGE_MASTER_KEY"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MasterKeyError(
            f"master key file {path} is readable by others (mode {mode:o}); chmod 600 it"
        )
    return parse_key(path.read_text())


def wrap(master: bytes, data_key: bytes) -> bytes:
    return aes_key_wrap(master, data_key)


def unwrap(master: bytes, wrapped: bytes) -> bytes:
    try:
        return aes_key_unwrap(master, wrapped)
    except InvalidUnwrap as exc:
        raise MasterKeyError("a subject key cannot be unwrapped: wrong master key") from exc


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """nonce || ciphertext+tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def open_sealed(key: bytes, blob: bytes, associated: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except InvalidTag as exc:
        raise MasterKeyError("a template failed authentication: wrong key or tampered") from exc


def key_check(master: bytes) -> bytes:
    """A value stored in the database to tell a wrong master key from a corrupt template."""
    return seal(master, _CHECK_PLAINTEXT, b"key-check")


def verify_key_check(master: bytes, blob: bytes) -> None:
    try:
        AESGCM(master).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], b"key-check")
    except InvalidTag as exc:
        raise MasterKeyError("the master key does not open this data directory") from exc
