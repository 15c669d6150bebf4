"""``visage migrate-store``: a real enrolled SQLite install moved into PostgreSQL (the
session's real server, tests.pg), then used there. On either ``--store`` run: the test is
about a SQLite source and a PostgreSQL target."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.cli_runner import run
from tests.conftest import PEOPLE_PURPOSE, make_app
from tests.pg import pg_server, use_sqlite
from visage.config import Settings
from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance.access import AuthError, Role
from visage.governance.audit import Actor
from visage.store import DB_FILE
from visage.store.schema import AuditEntryRow, SignInFailureRow, TemplateRow
from visage.usecases import audit_log
from visage.usecases import users as users_uc
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, make_consent

PASSWORD = "correct horse battery"
ADMIN = Actor.local()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def installed_once(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path
) -> tuple[Path, dict[str, str]]:
    """A closed SQLite data dir: two people enrolled from their photos, one identify, one
    console user with a failed sign-in (a row numbered by the database itself). Built once
    for the module (enrolling costs seconds); each test works on its own copy."""
    home = tmp_path_factory.mktemp("installed") / "home"
    use_sqlite(home)
    app = make_app(home, models=shared_app)
    ids = {}
    for folder in ("joe_biden", "barack_obama"):
        consent = make_consent(f"F-{folder}", [PEOPLE_PURPOSE], expires_on=date(2031, 1, 31))
        sid = add_subject(app, folder, consent).id
        assert enroll(app, sid, sorted((data / "people" / folder).iterdir())).enrolled
        ids[folder] = sid
    found = identify(app, data / "scenes/obama_and_biden.jpg", PEOPLE_PURPOSE)
    assert {c.subject_id for f in found.faces for c in f.candidates} == set(ids.values())
    users_uc.add_user(app, users_uc.NewUser(name="auditor", role=Role.auditor), PASSWORD, ADMIN)
    with pytest.raises(AuthError):
        users_uc.sign_in(app, "auditor", "wrong password!", None, "198.51.100.7")
    app.close()
    assert not (home / f"{DB_FILE}-wal").exists()  # all of it in the one file
    return home, ids


@pytest.fixture()
def installed(
    installed_once: tuple[Path, dict[str, str]], sqlite_home: Path
) -> tuple[Path, dict[str, str]]:
    """A copy of :func:`installed_once` in the test's own ``sqlite_home``."""
    home, ids = installed_once
    shutil.copytree(home, sqlite_home)
    return sqlite_home, ids


def test_migrate_store_copies_verifies_and_leaves_the_source(
    installed: tuple[Path, dict[str, str]], shared_app: Visage, data: Path
) -> None:
    home, ids = installed
    source_hash = _sha256(home / DB_FILE)
    url = pg_server().database("migrate")

    r = run(home, "migrate-store", "--to", url, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["audit_ok"] is True and report["source"] == str(home / DB_FILE)
    assert "***" not in url and report["target"].startswith("postgresql+psycopg://")
    rows = {t["table"]: t["rows"] for t in report["tables"]}
    assert rows["subjects"] == 2 and rows["templates"] >= 2 and rows["sign_in_failures"] == 1
    assert rows["audit_entries"] == report["audit_entries"] > 0
    assert list(rows)[-1] == "meta" and report["rows"] == sum(rows.values())
    assert "VISAGE_DATABASE_URL" in report["next_step"]
    assert _sha256(home / DB_FILE) == source_hash  # the source is untouched

    # The data dir told to use the copy: the same people found, the chain intact, the
    # counts equal to the source's, and new rows numbered past the copied ones.
    copy = Visage(Settings(home=home, database_url=url))
    copy._analyzer = shared_app.analyzer
    source = Visage(Settings(home=home, database_url=None))
    try:
        assert copy.store.is_postgresql and source.store.is_sqlite
        for core in (copy, source):
            with core.store.session() as session:
                counted = [
                    session.scalar(select(func.count()).select_from(t))
                    for t in (TemplateRow, AuditEntryRow)
                ]
                digest = repo.gallery_digest(session)
            assert counted == [rows["templates"], rows["audit_entries"]]
            assert digest == report["gallery_digest"] != "0" * 64
        found = identify(copy, data / "scenes/obama_and_biden.jpg", PEOPLE_PURPOSE)
        assert {c.subject_id for f in found.faces for c in f.candidates} == set(ids.values())
        with pytest.raises(AuthError):
            users_uc.sign_in(copy, "auditor", "wrong again!!", None, "198.51.100.7")
        with copy.store.session() as session:
            assert len(session.scalars(select(SignInFailureRow.id)).all()) == 2
        assert users_uc.sign_in(copy, "auditor", PASSWORD, None, "198.51.100.8")
        verified = audit_log.verify(copy)
        assert verified.ok and verified.entries > rows["audit_entries"]
    finally:
        copy.close()
        source.close()
    assert _sha256(home / DB_FILE) == source_hash  # reading it changed nothing either

    r = run(home, "audit", "verify", VISAGE_DATABASE_URL=url)
    assert r.returncode == 0 and "audit log intact" in r.stdout, r.stderr


def test_a_non_empty_or_wrong_target_is_refused(
    installed: tuple[Path, dict[str, str]],
) -> None:
    home, _ = installed
    source_hash = _sha256(home / DB_FILE)
    url = pg_server().database("migrate")
    r = run(home, "migrate-store", "--to", url)
    assert r.returncode == 0, r.stderr
    assert "audit log intact on the target" in r.stdout and "subjects" in r.stdout

    again = run(home, "migrate-store", "--to", url)
    assert again.returncode == 2
    assert "is not empty" in again.stderr and "Traceback" not in again.stderr
    for bad, why in [
        ("sqlite:///elsewhere.db", "must name a PostgreSQL database"),
        ("not a url", "is not a database URL"),
        ("postgresql+psycopg://user:secret@/", "names no database"),
        ("postgresql+psycopg://user:secret@/db?host=/nonexistent", "cannot write to the database"),
    ]:
        refused = run(home, "migrate-store", "--to", bad)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert "secret" not in refused.stderr
    # A data dir already on PostgreSQL has no SQLite file to move.
    moved = run(home, "migrate-store", "--to", url, VISAGE_DATABASE_URL=url)
    assert moved.returncode == 2 and "already uses the database" in moved.stderr
    assert _sha256(home / DB_FILE) == source_hash
