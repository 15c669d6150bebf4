"""Erasure through the API: certificate, nothing left on disk, no match; and a SIGKILL in the
middle of erasures leaves a consistent store whose audit log verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api.conftest import auth
from tests.conftest import make_app
from visage.api.app import create_app
from visage.config import Settings
from visage.core import Visage
from visage.governance.access import Role
from visage.governance.erasure import ROWS_DELETED_PG, VACUUMED_PG, ErasureCertificate
from visage.store.schema import SubjectRow, TemplateRow
from visage.usecases import audit_log
from visage.usecases.keys import create_key

PURPOSE = "door"
NAME = "Zelda Quintessa Vandermeer"  # distinctive: found by a byte scan if it survives
LFW = "lfw10"
"""Its 250x250 photos (one face each) for the templates: erasure does not depend on the
photo's size, and a 1-2 megapixel portrait of people/ costs ~5x more to analyse."""


def _scan(home: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [f"{path.name}: {n[:12]!r}" for n in needles if n in content]
    return found


def test_erasure_leaves_nothing_and_is_certified(
    sqlite_home: Path, shared_app: Visage, data: Path
) -> None:
    """A scan of the SQLite file's bytes: a SQLite test on either run (the PostgreSQL
    certificate is checked by the restart test below)."""
    core = make_app(sqlite_home, models=shared_app)
    enroller = auth(create_key(core, Role.enroller, []).key)
    operator = auth(create_key(core, Role.operator, [PURPOSE]).key)
    photos = [data / f"{LFW}/Colin_Powell/Colin_Powell_000{i}.jpg" for i in (1, 2)]
    with TestClient(create_app(core, identify_per_minute=10_000)) as client:
        body = {"name": NAME, "consent": {"reference": "FORM-Z", "purposes": [PURPOSE]}}
        sid = client.post("/v1/subjects", json=body, headers=enroller).json()["id"]
        for photo in photos:
            r = client.post(
                f"/v1/subjects/{sid}/templates", headers=enroller, content=photo.read_bytes()
            )
            assert r.json()["enrolled"], r.text
        other = client.post(
            "/v1/subjects",
            json={"name": "Someone Else", "consent": {"reference": "F-2", "purposes": [PURPOSE]}},
            headers=enroller,
        ).json()["id"]
        r = client.post(
            f"/v1/subjects/{other}/templates",
            headers=enroller,
            content=(data / f"{LFW}/George_W_Bush/George_W_Bush_0001.jpg").read_bytes(),
        )
        assert r.json()["enrolled"]
        probe = photos[1].read_bytes()
        r = client.post(f"/v1/identify?purpose={PURPOSE}", headers=operator, content=probe)
        assert r.json()["faces"][0]["candidates"][0]["subject_id"] == sid

        # What must not survive: the name, the sealed templates, the plaintext embeddings.
        with core.store.session() as session:
            sealed = [
                t.sealed
                for t in session.scalars(select(TemplateRow).where(TemplateRow.subject_id == sid))
            ]
        embeddings = [
            shared_app.analyzer.analyze(core.load_image(p).pixels)[0].embedding for p in photos
        ]
        plain = [e.astype("<f4").tobytes()[:64] for e in embeddings if e is not None]
        needles = [NAME.encode(), NAME.encode("utf-16-le"), *sealed, *plain]
        assert _scan(core.home, sealed)  # present before, so the scan can see them

        r = client.delete(f"/v1/subjects/{sid}", headers=enroller)
        assert r.status_code == 200, r.text
        cert = ErasureCertificate.model_validate(r.json())
        assert cert.verify()
        assert cert.body.deleted.templates == 2 and cert.body.deleted.events == 1
        assert cert.body.data_key_destroyed
        auditor = auth(create_key(core, Role.auditor, []).key)
        pem = client.get("/v1/audit/public-key", headers=auditor).text
        assert "PUBLIC KEY" in pem
        assert client.get(f"/v1/erasures/{sid}", headers=auditor).json() == r.json()

        assert _scan(core.home, needles) == []
        r = client.post(f"/v1/identify?purpose={PURPOSE}", headers=operator, content=probe)
        assert not r.json()["faces"][0]["candidates"]
        assert client.get(f"/v1/subjects/{sid}", headers=enroller).status_code == 404
        assert client.delete(f"/v1/subjects/{sid}", headers=enroller).status_code == 404
        # The other subject is untouched and still matches.
        r = client.post(
            f"/v1/identify?purpose={PURPOSE}",
            headers=operator,
            content=(data / f"{LFW}/George_W_Bush/George_W_Bush_0002.jpg").read_bytes(),
        )
        assert r.json()["faces"][0]["candidates"][0]["subject_id"] == other
        v = client.get("/v1/audit/verify", headers=auditor).json()
        assert v["ok"], v
    core.close()


def test_an_old_backup_cannot_be_read_after_erasure(
    tmp_path: Path, sqlite_home: Path, shared_app: Visage, data: Path
) -> None:
    """Crypto-shredding: a copy of the database taken before the erasure, restored later,
    yields no template of the erased subject — and the restart finishes the erasure. (A copy
    of the SQLite file: a SQLite test on either run.)"""
    import shutil

    from visage.usecases.enroll import enroll
    from visage.usecases.erase import erase
    from visage.usecases.subjects import add_subject, make_consent

    core = make_app(tmp_path / "home", models=shared_app)
    sid = add_subject(core, NAME, make_consent("F", [PURPOSE])).id
    enroll(core, sid, [data / f"{LFW}/Colin_Powell/Colin_Powell_0001.jpg"])
    core.store.scrub()
    backup = tmp_path / "backup.db"
    shutil.copy(core.home / "visage.db", backup)
    erase(core, sid)
    core.close()
    shutil.copy(backup, core.home / "visage.db")
    restored = Visage(Settings(home=core.home))
    with restored.store.session() as session:  # opening finishes the interrupted erasure
        assert session.get(SubjectRow, sid) is None
    entries = audit_log.entries(restored, operation="erase")
    assert entries[-1].outcome == "resumed" and entries[-1].subject_id == sid
    restored.close()


KILLER = """
import sys
from visage.core import Visage
from visage.config import Settings
from visage.usecases.erase import erase
app = Visage(Settings(home=sys.argv[1]))
for sid in sys.argv[2:]:
    erase(app, sid)
    print(sid, flush=True)
"""


def test_sigkill_during_erasures_leaves_a_consistent_store(
    tmp_path: Path, shared_app: Visage
) -> None:
    core = make_app(tmp_path / "home")
    rng = np.random.default_rng(0)
    from visage.gallery import repository as repo
    from visage.usecases.subjects import add_subject, make_consent

    model_id = core.analyzer.model_id
    ids = []
    for i in range(40):
        sid = add_subject(core, f"Person {i}", make_consent("F", [PURPOSE])).id
        with core.store.session() as session:
            subject = repo.get_subject(session, sid)
            for _ in range(3):
                v = rng.normal(size=128).astype(np.float32)
                repo.add_template(
                    session,
                    core.keyring,
                    subject,
                    v / np.linalg.norm(v),
                    model_id=model_id,
                    quality=0.9,
                )
        ids.append(sid)
    core.close()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VISAGE_") or k == "VISAGE_DATABASE_URL"  # the test's store
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLER, str(core.home), *ids],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    done = [proc.stdout.readline().strip() for _ in range(5)]  # some erasures completed
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert all(done)

    restarted = Visage(Settings(home=core.home))
    report = audit_log.verify(restarted)
    assert report.ok, report.problem
    keys = restarted.keyring
    with restarted.store.session() as session:
        remaining = set(session.scalars(select(SubjectRow.id)))
        templates = list(session.scalars(select(TemplateRow)))
    assert remaining, "the kill came after every erasure; nothing was tested"
    assert not set(done) & remaining
    for sid in remaining:  # every remaining subject is whole: key and templates
        assert keys.exists(sid)
    assert {t.subject_id for t in templates} == remaining
    assert all(len([t for t in templates if t.subject_id == s]) == 3 for s in remaining)
    erased = {e.subject_id for e in audit_log.entries(restarted, operation="erase")}
    assert erased == set(ids) - remaining
    restarted.close()


def test_crash_after_the_key_is_destroyed_is_finished_on_restart(
    tmp_path: Path, shared_app: Visage, data: Path, store_kind: str
) -> None:
    """The process dies right after step 1 (intent recorded, key destroyed, rows still
    there): the next start completes the erasure, once, and leaves nothing behind."""
    from visage.governance.audit import Actor
    from visage.governance.erasure import record_intent
    from visage.usecases.enroll import enroll
    from visage.usecases.subjects import add_subject, make_consent

    core = make_app(tmp_path / "home", models=shared_app)
    sid = add_subject(core, NAME, make_consent("F", [PURPOSE])).id
    enroll(core, sid, [data / f"{LFW}/Colin_Powell/Colin_Powell_0001.jpg"])
    with core.store.session() as session:
        sealed = [t.sealed for t in session.scalars(select(TemplateRow))]
    record_intent(core.store, sid, Actor.local())
    assert core.keyring.destroy(sid)
    core.close()  # the "crash": nothing else of the erasure ran

    restarted = Visage(Settings(home=core.home))
    with restarted.store.session() as session:
        assert session.get(SubjectRow, sid) is None
        assert not list(session.scalars(select(TemplateRow)))
    entries = audit_log.entries(restarted, operation="erase")
    assert [(e.subject_id, e.outcome) for e in entries] == [(sid, "resumed")]
    assert audit_log.verify(restarted).ok
    cert = ErasureCertificate.model_validate_json(
        (restarted.home / "certificates" / f"{sid}.json").read_text()
    )
    assert cert.verify() and cert.body.resumed_after_interruption
    assert not cert.body.partial
    if store_kind == "sqlite":
        assert cert.body.store == "sqlite" and cert.body.wal_truncated
    else:  # PostgreSQL: no log of Visage's to truncate; the certificate says what VACUUM did
        assert cert.body.store == "postgresql" and cert.body.wal_truncated is None
        assert ROWS_DELETED_PG in cert.body.storage and VACUUMED_PG in cert.body.storage
    assert _scan(restarted.home, [NAME.encode(), *sealed]) == []
    restarted.close()
