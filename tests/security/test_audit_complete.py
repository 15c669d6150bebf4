"""Attacks on the audit log's completeness (issue 11, item 2).

Each test takes a data dir whose log holds real operations (checkpoint every 4 entries, so
signed heads at entries 4 and 8 of 10), attacks it as someone with write access to the
database (and to the signing key file) would, and requires ``audit verify`` to fail. Before
the witness, the checkpoint intervals, the purge markers and the pinned key, every one of
these attacks left a log that verified.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from tests.cli_runner import run
from tests.conftest import make_app
from tests.pg import copy_database, store_of
from visage.api.app import create_app
from visage.config import Settings
from visage.core import Visage
from visage.governance import audit, signing, witness
from visage.governance.access import Role
from visage.store.schema import AuditCheckpointRow, AuditEntryRow, AuditPurgeRow
from visage.usecases import audit_log
from visage.usecases.enroll import enroll
from visage.usecases.faces import detect
from visage.usecases.identify import identify
from visage.usecases.keys import create_key
from visage.usecases.subjects import add_subject, make_consent
from visage.usecases.verify import verify

EVERY = 4


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path) -> Path:
    """A data dir with 10 entries of real operations, built once; tests attack copies."""
    home = tmp_path_factory.mktemp("audit-pristine") / "home"
    app = make_app(home, audit_checkpoint_every=EVERY, models=shared_app)
    sid = add_subject(app, "Joe Biden", make_consent("F-1", ["door"])).id
    enroll(app, sid, [data / "people/joe_biden/1.jpg"])
    identify(app, data / "scenes/two_people.jpg", "door")
    # 250x250 LFW photos for the rest: what is attacked is the log, not what the entries
    # found, and a 1-2 megapixel portrait costs ~5x more to analyse
    lfw = data / "lfw10/Colin_Powell"
    verify(app, lfw / "Colin_Powell_0001.jpg", lfw / "Colin_Powell_0002.jpg")
    detect(app, data / "scenes/two_people.jpg")
    while len(audit_log.entries(app)) < 10:
        detect(app, lfw / "Colin_Powell_0002.jpg")
    report = audit_log.verify(app)
    assert report.ok and report.last_seq == 10 and report.witnessed_seq == 8, report
    app.close()
    return home


@pytest.fixture()
def home(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(pristine, copy)
    copy_database(pristine, copy)
    return copy


def _app(home: Path) -> Visage:
    return Visage(Settings(home=home, audit_checkpoint_every=EVERY))


def _sql(home: Path, *statements: str, params: dict[str, object] | None = None) -> None:
    """Run ``statements`` on the data dir's database directly (as an attacker would)."""
    store = store_of(home)
    try:
        with store.engine.begin() as db:
            for s in statements:
                db.execute(text(s), params if ":" in s else {})
    finally:
        store.close()


def _hash_of(home: Path, seq: int) -> str:
    store = store_of(home)
    try:
        with store.engine.connect() as db:
            found = db.execute(text("SELECT hash FROM audit_entries WHERE seq = :s"), {"s": seq})
            return str(found.scalar_one())
    finally:
        store.close()


def _attacker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _resign_checkpoints(home: Path, key: Ed25519PrivateKey) -> None:
    """Re-sign every checkpoint in the database with ``key``."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    app = _app(home)
    with app.store.session() as session:
        rows = session.execute(select(AuditCheckpointRow.seq, AuditCheckpointRow.hash)).all()
    with app.store.session() as session:
        for seq, head in rows:
            cp = session.get(AuditCheckpointRow, seq)
            assert cp is not None
            cp.key_id = signing.key_id_of(raw)
            cp.signature = key.sign(audit.checkpoint_message(seq, head, cp.at))
    app.close()


def _verify(home: Path, public_key: bytes | None = None) -> audit.VerifyReport:
    app = _app(home)
    try:
        return audit_log.verify(app, public_key)
    finally:
        app.close()


def test_deleting_the_newest_entries_and_their_checkpoint_is_caught(home: Path) -> None:
    _sql(
        home,
        "DELETE FROM audit_entries WHERE seq >= 7",
        "DELETE FROM audit_checkpoints WHERE seq = 8",
    )
    report = _verify(home)
    assert not report.ok and report.first_bad_seq == 7
    assert "head 8 was witnessed" in (report.problem or "")


def test_deleting_checkpoints_is_caught(home: Path) -> None:
    _sql(home, "DELETE FROM audit_checkpoints")
    report = _verify(home)
    assert not report.ok and report.first_bad_seq == 4
    assert "checkpoint at entry 4 is missing" in (report.problem or "")


def test_wiping_the_whole_log_is_caught_by_the_cli(home: Path) -> None:
    _sql(
        home,
        "DELETE FROM audit_entries",
        "DELETE FROM audit_checkpoints",
        "DELETE FROM audit_purges",
    )
    report = _verify(home)
    assert (
        not report.ok and report.entries == 0 and "head 8 was witnessed" in (report.problem or "")
    )
    r = run(home, "audit", "verify")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "BROKEN" in r.stderr and "witnessed" in r.stderr


def test_wiping_the_whole_log_is_caught_by_the_api(home: Path) -> None:
    _sql(home, "DELETE FROM audit_entries", "DELETE FROM audit_checkpoints")
    core = Visage(Settings(home=home, audit_checkpoint_every=EVERY, retention_interval_minutes=0))
    genuine = core.signer.public_raw.hex()
    auditor = {"X-API-Key": create_key(core, Role.auditor, [], owner="audit person").key}
    with TestClient(create_app(core)) as client:
        v = client.get("/v1/audit/verify", headers=auditor)
        assert v.status_code == 200 and v.json()["ok"] is False, v.text
        assert "head 8 was witnessed" in v.json()["problem"]
        v = client.get(f"/v1/audit/verify?public_key={genuine}", headers=auditor)
        assert v.status_code == 200 and v.json()["ok"] is False, v.text
        bad = client.get("/v1/audit/verify?public_key=not-a-key", headers=auditor)
        assert bad.status_code == 422, bad.text
    core.close()


def test_deleting_old_entries_early_is_caught(home: Path) -> None:
    # Up to a checkpoint, which used to be accepted as the anchor of a legitimate purge.
    _sql(home, "DELETE FROM audit_entries WHERE seq <= 4")
    report = _verify(home)
    assert not report.ok and report.first_bad_seq == 1
    assert "no signed purge marker" in (report.problem or "")


def test_rewritten_and_rehashed_history_is_caught(home: Path) -> None:
    """Drop the checkpoints (they cannot be re-signed), declare a huge interval so none is
    due, edit entry 3 and recompute every later hash: a perfect chain, but not the one whose
    head was witnessed."""
    _sql(
        home,
        "DELETE FROM audit_checkpoints",
        "UPDATE meta SET value = :v WHERE key = :k",
        params={"v": b"[[1, 1000000]]", "k": audit.INTERVAL_META},
    )
    app = _app(home)
    with app.store.session() as session:
        rows = list(session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq)))
        rows[2].details = {**rows[2].details, "faces": 0}
        prev = rows[1].hash
        for row in rows[2:]:
            row.prev_hash = prev
            row.hash = audit.entry_hash(row)
            prev = row.hash
    app.close()
    report = _verify(home)
    assert not report.ok and report.first_bad_seq == 8
    assert "witnessed" in (report.problem or "") and "rewritten" in (report.problem or "")


def test_a_replaced_signing_key_that_resigned_everything_is_caught(home: Path) -> None:
    genuine = signing.load_existing(home / signing.SIGNING_KEY_FILE)
    assert genuine is not None
    key = _attacker_key()
    (home / signing.SIGNING_KEY_FILE).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    _resign_checkpoints(home, key)
    report = _verify(home)
    assert not report.ok and "is not the pinned key" in (report.problem or "")

    # The attacker also rewrites the pin in the database and the witness file in the data dir:
    # an auditor's own copy of the public key still catches it.
    attacker = signing.Signer(key)
    _sql(
        home,
        "UPDATE meta SET value = :v WHERE key = :k",
        params={"v": attacker.fingerprint.encode(), "k": audit.PIN_META},
    )
    path = home / witness.WITNESS_DIR / witness.WITNESS_FILE
    old = witness.read(path)
    assert old is not None and old.head is not None
    at = old.head.at
    forged_head = old.head.model_copy(
        update={
            "key_id": attacker.key_id,
            "signature": key.sign(audit.checkpoint_message(8, _hash_of(home, 8), at)).hex(),
        }
    )
    path.write_text(
        witness.Witness(
            key_fingerprint=attacker.fingerprint,
            public_key=attacker.public_raw.hex(),
            head=forged_head,
        ).model_dump_json()
    )
    report = _verify(home, genuine.public_raw)
    assert not report.ok and "not the key given" in (report.problem or "")
    r = run(home, "audit", "verify", "--public-key", genuine.public_raw.hex())
    assert r.returncode == 1, r.stdout + r.stderr
    pem = home.parent / "genuine.pem"
    pem.write_text(genuine.public_pem)
    r = run(home, "audit", "verify", "--public-key", str(pem), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False


def test_a_forged_purge_marker_is_caught(home: Path) -> None:
    """Entries 1-4 deleted early, with a marker that claims retention did it, signed with a
    key of the attacker's (the real one is out of reach) under the real key id."""
    genuine = signing.load_existing(home / signing.SIGNING_KEY_FILE)
    assert genuine is not None
    anchor = _hash_of(home, 4)
    at = datetime.now(UTC)
    rule = "retention_audit_days=365"
    signature = _attacker_key().sign(audit.purge_message(5, anchor, at, rule))
    _sql(home, "DELETE FROM audit_entries WHERE seq <= 4")
    app = _app(home)
    with app.store.session() as session:
        session.add(
            AuditPurgeRow(
                before_seq=5,
                anchor_hash=anchor,
                at=at,
                rule=rule,
                key_id=genuine.key_id,
                signature=signature,
            )
        )
    app.close()
    report = _verify(home)
    assert not report.ok and report.first_bad_seq == 5
    assert "purge marker" in (report.problem or "") and "forged" in (report.problem or "")
