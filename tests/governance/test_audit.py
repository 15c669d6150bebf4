"""The audit chain: every operation is recorded, and any tampering is found and named."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import make_app
from tests.test_cli import run
from visage.app import Visage
from visage.config import Settings
from visage.governance import audit
from visage.store.db import DB_FILE
from visage.usecases import audit_log
from visage.usecases.enroll import enroll
from visage.usecases.faces import detect
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, make_consent
from visage.usecases.verify import verify


@pytest.fixture()
def logged(tmp_path: Path, shared_app: Visage, data: Path) -> Visage:
    """A data dir whose log holds real operations (checkpoint every 4 entries)."""
    app = make_app(tmp_path / "home", audit_checkpoint_every=4)
    app._analyzer = shared_app.analyzer
    sid = add_subject(app, "Joe Biden", make_consent("F-1", ["door"])).id
    enroll(app, sid, [data / "people/joe_biden/1.jpg"])
    identify(app, data / "scenes/two_people.jpg", "door")
    verify(app, data / "people/joe_biden/1.jpg", data / "people/joe_biden/2.jpg")
    detect(app, data / "scenes/two_people.jpg")
    for _ in range(4):
        identify(app, data / "people/joe_biden/2.jpg", "door")
    return app


def _sql(app: Visage, *statements: str) -> None:
    with sqlite3.connect(app.home / DB_FILE) as db:
        for s in statements:
            db.execute(s)


def _verify_cli(app: Visage) -> tuple[int, str]:
    r = run(app.home, "audit", "verify")
    return r.returncode, r.stdout + r.stderr


def test_operations_are_recorded_without_names_or_biometrics(logged: Visage) -> None:
    entries = audit_log.entries(logged)
    ops = [e.operation for e in entries]
    assert ops[:7] == [
        "profile.set",
        "subject.create",
        "enroll",
        "identify",
        "verify",
        "detect",
        "identify",
    ]
    ident = entries[3]
    assert ident.purpose == "door" and ident.actor.startswith("local:")
    assert ident.details["faces"] == 2 and ident.details["matches"] == 1
    assert ident.details["bystanders"] == 1
    assert len(ident.details["input_sha256"]) == 64 and len(ident.details["model"]) == 64
    assert ident.details["threshold"] == logged.threshold
    text = json.dumps([e.model_dump(mode="json") for e in entries])
    assert "Joe Biden" not in text and "Biden" not in text
    report = audit_log.verify(logged)
    assert report.ok and report.entries == 10 and report.checkpoints == 2


def test_intact_log_verifies_from_the_cli(logged: Visage) -> None:
    code, text = _verify_cli(logged)
    assert code == 0, text
    assert "intact" in text


def test_edited_entry_is_named(logged: Visage) -> None:
    _sql(
        logged, "UPDATE audit_entries SET details = json_set(details, '$.matches', 0) WHERE seq = 4"
    )
    code, text = _verify_cli(logged)
    assert code == 1 and "entry 4" in text and "altered" in text


def test_deleted_entry_is_named(logged: Visage) -> None:
    _sql(logged, "DELETE FROM audit_entries WHERE seq = 6")
    code, text = _verify_cli(logged)
    assert code == 1 and "entry 6" in text and "missing" in text


def test_inserted_entry_is_named(logged: Visage) -> None:
    # Make room after entry 5 and insert a forged entry whose hash is even well formed.
    _sql(
        logged,
        "UPDATE audit_entries SET seq = seq + 1000 WHERE seq > 5",
        "UPDATE audit_entries SET seq = seq - 999 WHERE seq > 1000",
        "INSERT INTO audit_entries SELECT 6, at, actor, role, 'verify', purpose, subject_id, "
        "outcome, details, hash, hash FROM audit_entries WHERE seq = 5",
    )
    code, text = _verify_cli(logged)
    assert code == 1 and "entry 6" in text


def test_reordered_entries_are_named(logged: Visage) -> None:
    _sql(
        logged,
        "UPDATE audit_entries SET seq = -7 WHERE seq = 7",
        "UPDATE audit_entries SET seq = 7 WHERE seq = 8",
        "UPDATE audit_entries SET seq = 8 WHERE seq = -7",
    )
    code, text = _verify_cli(logged)
    assert code == 1 and "entry 7" in text


def test_a_recomputed_chain_is_caught_by_the_signed_checkpoints(logged: Visage) -> None:
    """Whoever edits an entry and recomputes every later hash still cannot sign."""
    from sqlalchemy import select

    from visage.store.schema import AuditEntryRow

    with logged.store.session() as session:
        rows = list(session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq)))
        rows[2].details = {**rows[2].details, "quality": 0.1}
        prev = rows[1].hash
        for row in rows[2:]:
            row.prev_hash = prev
            row.hash = audit.entry_hash(row)
            prev = row.hash
    report = audit_log.verify(logged)
    assert not report.ok and report.first_bad_seq == 4
    assert "checkpoint" in (report.problem or "")


def test_truncated_tail_is_caught_by_a_checkpoint(logged: Visage) -> None:
    _sql(logged, "DELETE FROM audit_entries WHERE seq >= 7")
    report = audit_log.verify(logged)
    assert not report.ok and report.first_bad_seq == 7


def test_signing_key_lives_outside_the_database(logged: Visage, tmp_path: Path) -> None:
    assert (logged.home / "signing.key").stat().st_mode & 0o077 == 0
    # A different signing key makes every checkpoint fail: signatures really are checked.
    other = Visage(Settings(home=logged.home, signing_key_file=tmp_path / "other.key"))
    report = audit_log.verify(other)
    assert not report.ok and "signature" in (report.problem or "")


def test_retention_drops_old_entries_up_to_a_checkpoint(logged: Visage) -> None:
    from visage.usecases.retention import run as retention_run

    later = datetime.now(UTC) + timedelta(days=logged.settings.retention_audit_days + 1)
    report = retention_run(logged, now=later)
    assert report.audit_entries_dropped == 8  # up to the checkpoint at entry 8
    check = audit_log.verify(logged)
    assert check.ok, check.problem
    assert check.first_seq == 9
    ops = [e.operation for e in audit_log.entries(logged)]
    assert ops[-1] == "retention.purge"


def test_export_is_json_lines_with_checkpoints(logged: Visage) -> None:
    r = run(logged.home, "audit", "export")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    entries = [x for x in lines if "checkpoint" not in x]
    checkpoints = [x for x in lines if x.get("checkpoint")]
    assert [e["seq"] for e in entries] == list(range(1, 11))
    assert [c["seq"] for c in checkpoints] == [4, 8]


def test_concurrent_appends_keep_one_chain(logged: Visage) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from visage.governance.audit import Actor

    def write(i: int) -> None:
        with logged.store.session() as session:
            logged.audit(session, Actor("test:thread", "admin"), "detect", n=i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(40)))
    report = audit_log.verify(logged)
    assert report.ok and report.entries == 50
