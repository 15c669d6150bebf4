"""Issue 11, item 11: an old backup reveals nothing of an erased person.

The attacker holds a copy of the database taken before the erasure (``visage.db`` and its
write-ahead log, as a backup tool would copy them; the key directory is backed up on its
own, shorter schedule) and, later, the live data directory with its master key. Neither may
show the person's name or consent reference in clear, and the sealed name in the backup
cannot be opened once the subject's data key is destroyed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from tests.conftest import make_app
from tests.pg import store_of, stored_bytes
from visage.api.app import create_app
from visage.core import Visage
from visage.errors import MasterKeyError
from visage.gallery import repository as repo
from visage.governance.access import Role
from visage.store import crypto
from visage.store.db import DB_FILE, Store
from visage.store.keyring import KEYS_DIR, KeyDestroyedError, Keyring
from visage.store.schema import SubjectRow
from visage.usecases.erase import erase
from visage.usecases.keys import create_key
from visage.usecases.subjects import (
    add_consent,
    add_subject,
    list_subjects,
    make_consent,
    withdraw_consent,
)

NAME = "Zebulon Quixote-Marchetti"
REFERENCE = "CONSENT-ZQM-8841-XJ"
SECOND_REFERENCE = "RENEWAL-ZQM-5512-QV"


def _needles(*values: str) -> list[bytes]:
    out = []
    for v in values:
        for form in (v, v.lower(), v.upper()):
            out += [form.encode("utf-8"), form.encode("utf-16-le")]
    return out


def _leaks(root: Path, values: list[str]) -> list[str]:
    """Every (file, value) where a value appears in clear in a file under ``root``."""
    found = []
    needles = _needles(*values)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        content = path.read_bytes()
        found += [f"{path.relative_to(root)}: {n!r}" for n in needles if n in content]
    return found


def _in_database(store: Store, values: list[str]) -> list[str]:
    """Every value that appears in clear in what the database holds (SQLite: its files;
    PostgreSQL: every stored value, as a dump would hold them)."""
    held = stored_bytes(store)
    return [f"database: {n!r}" for n in _needles(*values) if n in held]


def _backup(home: Path, into: Path) -> Path:
    """What a backup of the database holds: every file of the data dir but the keys."""
    shutil.copytree(home, into, ignore=shutil.ignore_patterns(KEYS_DIR))
    return into


def test_an_old_backup_reveals_nothing_of_an_erased_person(
    fresh_app: Visage, tmp_path: Path
) -> None:
    sid = add_subject(fresh_app, NAME, make_consent(REFERENCE, ["door"])).id
    add_consent(fresh_app, sid, make_consent(SECOND_REFERENCE, ["payroll"]))
    withdraw_consent(fresh_app, sid, SECOND_REFERENCE)
    assert [s.name for s in list_subjects(fresh_app)] == [NAME]  # still readable while live
    backup = _backup(fresh_app.home, tmp_path / "backup")
    assert (backup / DB_FILE).is_file() or fresh_app.store.is_postgresql
    assert _in_database(fresh_app.store, [NAME, REFERENCE, SECOND_REFERENCE]) == []
    with fresh_app.store.session() as session:  # the row as the backup holds it
        row = session.execute(
            select(SubjectRow.name, SubjectRow.name_sealed).where(SubjectRow.id == sid)
        ).one()

    erase(fresh_app, sid)

    assert _leaks(backup, [NAME, REFERENCE, SECOND_REFERENCE]) == []
    assert _leaks(fresh_app.home, [NAME, REFERENCE, SECOND_REFERENCE]) == []
    assert _in_database(fresh_app.store, [NAME, REFERENCE, SECOND_REFERENCE]) == []
    # With the master key, but the subject's key destroyed, the backup's sealed name is shut.
    plain, sealed = row
    assert plain == "" and sealed
    keys = Keyring(fresh_app.home, fresh_app.master_key)
    with pytest.raises(KeyDestroyedError):
        keys.get(sid)
    for guess in (fresh_app.master_key, *(keys.get(k) for k in keys.subject_ids())):
        with pytest.raises(MasterKeyError):
            crypto.open_sealed(guess, sealed, f"subject-name:{sid}".encode())


def test_list_and_exact_search_by_name_still_work(fresh_app: Visage) -> None:
    ada = add_subject(fresh_app, "Ada Lovelace", make_consent("F-1", ["door"])).id
    add_subject(fresh_app, "Grace Hopper", make_consent("F-2", ["door"]))
    assert sorted(s.name for s in list_subjects(fresh_app)) == ["Ada Lovelace", "Grace Hopper"]
    assert [s.id for s in list_subjects(fresh_app, "  ada   LOVELACE ")] == [ada]
    assert list_subjects(fresh_app, "Ada") == []
    key = create_key(fresh_app, Role.enroller, []).key
    with TestClient(create_app(fresh_app)) as client:
        got = client.get(
            "/v1/subjects", params={"name": "Ada Lovelace"}, headers={"X-API-Key": key}
        )
        assert got.status_code == 200
        assert [(s["id"], s["name"]) for s in got.json()] == [(ada, "Ada Lovelace")]
        assert [c["reference"] for c in got.json()[0]["consents"]] == ["F-1"]
    with fresh_app.store.session() as session:
        assert repo.find_by_name(session, fresh_app.keyring, "grace hopper")


def test_a_data_dir_with_plaintext_names_is_sealed_on_open(fresh_app: Visage) -> None:
    sid = add_subject(fresh_app, "placeholder", make_consent("placeholder-ref", ["door"])).id
    home = fresh_app.home
    fresh_app.close()
    # Rewind the rows to the old format, as a data dir of an older version holds them.
    store = store_of(home)
    with store.engine.begin() as db:
        db.execute(
            text("UPDATE subjects SET name = :v, name_sealed = NULL, name_index = NULL"),
            {"v": NAME},
        )
        db.execute(
            text(
                "UPDATE consents SET reference = :v, reference_sealed = NULL, "
                "reference_index = NULL"
            ),
            {"v": REFERENCE},
        )
    assert _in_database(store, [NAME, REFERENCE])  # the old format, in clear
    store.close()  # SQLite: the last connection closed, the log is checkpointed into the file

    reopened = make_app(home, dpia=False)
    try:
        (subject,) = list_subjects(reopened)
        assert (subject.id, subject.name) == (sid, NAME)
        assert [c.reference for c in subject.consents] == [REFERENCE]
        assert [s.id for s in list_subjects(reopened, NAME.upper())] == [sid]
        assert _leaks(home, [NAME, REFERENCE]) == []
        assert _in_database(reopened.store, [NAME, REFERENCE]) == []
        with reopened.store.session() as session:  # idempotent: nothing left to seal
            assert repo.seal_plaintext(session, reopened.keyring) == 0
    finally:
        reopened.close()
