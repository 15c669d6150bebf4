"""Initialise a data directory: folder, master key, database, signing key pinned in the
database and in the audit witness file (idempotent)."""

from __future__ import annotations

import os

from pydantic import BaseModel

from visage.core import KEY_CHECK, Visage
from visage.store import crypto
from visage.store.db import open_store
from visage.store.schema import Meta
from visage.usecases import audit_log


class InitReport(BaseModel):
    home: str
    database: str
    key_source: str
    created: bool
    signing_key_fingerprint: str
    """SHA-256 of the audit signing public key, pinned here: keep a copy to check the log."""
    witness: str


def init(core: Visage) -> InitReport:
    home = core.home
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    created = False
    if core.settings.master_key:
        master = crypto.parse_key(core.settings.master_key)
        key_source = "environment (VISAGE_MASTER_KEY)"
    elif core.key_path.exists():
        master = crypto.read_key_file(core.key_path)
        key_source = str(core.key_path)
    else:
        master = crypto.create_key_file(core.key_path)
        key_source = str(core.key_path)
        created = True
    store = open_store(home, create=True, url=core.settings.database_url)
    try:
        with store.session() as session:
            check = session.get(Meta, KEY_CHECK)
            if check is None:
                session.add(Meta(key=KEY_CHECK, value=crypto.key_check(master)))
                created = True
            else:
                crypto.verify_key_check(master, check.value)
            fingerprint = audit_log.pin_signing_key(core, session)
    finally:
        store.close()
    return InitReport(
        home=str(home),
        database=store.url,
        key_source=key_source,
        created=created,
        signing_key_fingerprint=fingerprint,
        witness=str(audit_log.witness_path(core)),
    )
