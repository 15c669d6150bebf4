"""Envelope encryption and the master key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from visage.config import Settings
from visage.core import Visage
from visage.errors import MasterKeyError
from visage.store import crypto


def test_seal_round_trip_and_binding() -> None:
    key = crypto.new_key()
    blob = crypto.seal(key, b"template bytes", b"aad-1")
    assert b"template bytes" not in blob
    assert crypto.open_sealed(key, blob, b"aad-1") == b"template bytes"
    with pytest.raises(MasterKeyError):
        crypto.open_sealed(key, blob, b"aad-2")  # moved to another row
    with pytest.raises(MasterKeyError):
        crypto.open_sealed(crypto.new_key(), blob, b"aad-1")


def test_wrap_unwrap() -> None:
    master, dek = crypto.new_key(), crypto.new_key()
    wrapped = crypto.wrap(master, dek)
    assert dek not in wrapped
    assert crypto.unwrap(master, wrapped) == dek
    with pytest.raises(MasterKeyError, match="wrong master key"):
        crypto.unwrap(crypto.new_key(), wrapped)


def test_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = crypto.create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.read_key_file(path) == key
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyError, match="readable by others"):
        crypto.read_key_file(path)


def test_parse_key_formats() -> None:
    key = crypto.new_key()
    assert crypto.parse_key(key.hex()) == key
    import base64

    assert crypto.parse_key(base64.urlsafe_b64encode(key).decode()) == key
    with pytest.raises(MasterKeyError):
        crypto.parse_key("too-short")


def test_wrong_master_key_is_a_clear_error(fresh_app: Visage) -> None:
    other = Visage(Settings(home=fresh_app.home, master_key=crypto.new_key().hex()))
    with pytest.raises(MasterKeyError, match="does not open this data directory"):
        _ = other.store


def test_master_key_from_environment(tmp_path: Path) -> None:
    from visage.usecases.setup import init

    key = crypto.new_key().hex()
    app = Visage(Settings(home=tmp_path / "h", master_key=key))
    report = init(app)
    assert "VISAGE_MASTER_KEY" in report.key_source
    assert not (tmp_path / "h" / "master.key").exists()
    assert app.master_key == bytes.fromhex(key)
