"""The audit chain: every operation is recorded, and any tampering is found and named."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli_runner import run
from tests.conftest import make_app
from tests.pg import copy_database
from visage.config import Settings
from visage.core import Visage
from visage.governance import audit, signing, witness
from visage.governance.audit_ops import DetectAudit
from visage.usecases import audit_log
from visage.usecases.enroll import enroll
from visage.usecases.faces import detect
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, make_consent
from visage.usecases.verify import verify


@pytest.fixture(scope="module")
def logged_home(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path) -> Path:
    """A data dir whose log holds real operations (checkpoint every 4 entries), built once
    per module: the models run here, not in every test."""
    home = tmp_path_factory.mktemp("audit-logged") / "home"
    app = make_app(home, audit_checkpoint_every=4, models=shared_app)
    sid = add_subject(app, "Joe Biden", make_consent("F-1", ["door"])).id
    enroll(app, sid, [data / "people/joe_biden/1.jpg"])
    identify(app, data / "scenes/two_people.jpg", "door")
    # 250x250 LFW photos for the entries whose findings no test reads: a 1-2 megapixel
    # portrait costs ~5x more to analyse
    lfw = data / "lfw10/Colin_Powell"
    verify(app, lfw / "Colin_Powell_0001.jpg", lfw / "Colin_Powell_0002.jpg")
    detect(app, data / "scenes/two_people.jpg")
    for _ in range(4):
        identify(app, lfw / "Colin_Powell_0002.jpg", "door")
    app.close()
    return home


@pytest.fixture()
def logged(logged_home: Path, tmp_path: Path, shared_app: Visage) -> Iterator[Visage]:
    """A copy of ``logged_home`` of this test's own, opened."""
    home = tmp_path / "home"
    shutil.copytree(logged_home, home)
    copy_database(logged_home, home)
    app = Visage(Settings(home=home, audit_checkpoint_every=4))
    app._analyzer = shared_app.analyzer
    yield app
    app.close()


@pytest.fixture()
def chain(tmp_path: Path) -> Visage:
    """Like ``logged`` (10 entries, signed heads at 4 and 8) without running the models."""
    app = make_app(tmp_path / "home", audit_checkpoint_every=4)
    for i in range(9):
        with app.store.session() as session:
            app.audit(session, audit.Actor("test:chain", "admin"), _detect(i))
    return app


def _detect(i: int = 0) -> DetectAudit:
    """A detect entry without running the models."""
    return DetectAudit(input_sha256=f"{i:064x}", faces=i)


def _sql(app: Visage, *statements: str) -> None:
    """Tamper with the store behind the core's back (raw SQL, its own transaction)."""
    with app.store.engine.begin() as conn:
        for s in statements:
            conn.exec_driver_sql(s)


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
    edit = (
        "json_set(details, '$.matches', 0)"
        if logged.store.is_sqlite
        else "jsonb_set(details::jsonb, '{matches}', '0')::json"
    )
    _sql(logged, f"UPDATE audit_entries SET details = {edit} WHERE seq = 4")
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
    # ... and by the witnessed head when the checkpoint goes too (tests/security).


def test_signing_key_lives_outside_the_database(logged: Visage, tmp_path: Path) -> None:
    assert (logged.home / "signing.key").stat().st_mode & 0o077 == 0
    # Another key file is not trusted: the key pinned at init is.
    other_key = tmp_path / "other.key"
    other_public = signing.load_or_create(other_key).public_raw
    other = Visage(Settings(home=logged.home, signing_key_file=other_key))
    report = audit_log.verify(other)
    assert not report.ok and "not the pinned key" in (report.problem or "")
    # Given as the key to check against, it fails both the pin and every signature.
    report = audit_log.verify(logged, other_public)
    assert not report.ok and "not the key given" in (report.problem or "")
    assert audit_log.verify(logged, logged.signer.public_raw).ok


def test_witness_file_holds_the_newest_signed_head(chain: Visage) -> None:
    seen = witness.read(chain.home / "witness" / "audit-head.json")
    assert seen is not None and seen.head is not None
    assert seen.head.seq == 8 and seen.key_fingerprint == chain.signer.fingerprint
    with chain.store.session() as session:
        assert audit.pinned_fingerprint(session) == chain.signer.fingerprint
    # The scheduler's checkpoint moves the witnessed head to the newest entry.
    cp = audit_log.checkpoint(chain)
    assert cp is not None and cp.seq == 10
    report = audit_log.verify(chain)
    assert report.ok and report.witnessed_seq == 10


def test_a_data_dir_without_a_pin_is_pinned_on_first_use(chain: Visage) -> None:
    shutil.rmtree(chain.home / "witness")
    _sql(chain, f"DELETE FROM meta WHERE key = '{audit.PIN_META}'")
    first = audit_log.verify(chain)
    assert first.ok and first.pinned_now, first.problem
    assert first.key_fingerprint == chain.signer.fingerprint
    again = audit_log.verify(chain)
    assert again.ok and not again.pinned_now


def test_a_deleted_witness_file_fails_verify(chain: Visage) -> None:
    (chain.home / "witness" / "audit-head.json").unlink()
    report = audit_log.verify(chain)
    assert not report.ok and "witness" in (report.problem or "")


def test_a_changed_checkpoint_interval_keeps_the_log_verifiable(chain: Visage) -> None:
    actor = audit.Actor("test:interval", "admin")
    for every in (3, 5):
        app = Visage(Settings(home=chain.home, audit_checkpoint_every=every))
        for _ in range(7):
            with app.store.session() as session:
                app.audit(session, actor, _detect())
        app.close()
    report = audit_log.verify(chain)
    assert report.ok and report.last_seq == 24, report.problem
    with chain.store.session() as session:
        assert [c.seq for c in audit.checkpoints(session)] == [4, 8, 12, 15, 20]


def test_signed_heads_go_to_the_webhooks(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        app = make_app(tmp_path / "home", audit_checkpoint_every=2, webhook_urls=[url])
        with app.store.session() as session:
            app.audit(session, audit.Actor("test:hook", "admin"), _detect())
        app.notifier.flush()
        heads = [m for m in received if m["type"] == "audit.head"]
        assert [m["seq"] for m in heads] == [2]
        assert heads[0]["key_fingerprint"] == app.signer.fingerprint
        app.close()
    finally:
        server.shutdown()


def test_retention_drops_old_entries_up_to_a_checkpoint(logged: Visage) -> None:
    from visage.usecases.retention import run as retention_run

    later = datetime.now(UTC) + timedelta(days=logged.settings.retention_audit_days + 1)
    report = retention_run(logged, now=later)
    assert report.audit_entries_dropped == 8  # up to the checkpoint at entry 8
    check = audit_log.verify(logged)
    assert check.ok, check.problem
    assert check.first_seq == 9 and check.purged_before == 9
    ops = [e.operation for e in audit_log.entries(logged)]
    assert ops[-1] == "retention.purge"
    markers = [json.loads(x) for x in audit_log.export_lines(logged) if '"purge": true' in x]
    assert [(m["before_seq"], m["rule"][:24]) for m in markers] == [(9, "retention_audit_days=365")]


def test_retention_does_not_launder_a_tampered_prefix(chain: Visage) -> None:
    from visage.usecases.retention import run as retention_run

    _sql(chain, "UPDATE audit_entries SET outcome = 'refused' WHERE seq = 2")
    later = datetime.now(UTC) + timedelta(days=chain.settings.retention_audit_days + 1)
    assert retention_run(chain, now=later).audit_entries_dropped == 0
    report = audit_log.verify(chain)
    assert not report.ok and report.first_bad_seq == 2


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
            logged.audit(session, Actor("test:thread", "admin"), _detect(i))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(40)))
    report = audit_log.verify(logged)
    assert report.ok and report.entries == 50
