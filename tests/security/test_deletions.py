"""Issue 11, item 8: deletions keep their word.

Attack: someone with a copy of the data directory (keys included) looks for what was
deleted. After a template deletion, a consent withdrawal or a review rejection, the deleted
template or probe crop must be recoverable from no file: not from ``visage.db``, its WAL or
shared memory, nor from the index cache (``index.bin``) or its journal, opened with the
index key that is on disk. And an erasure certificate must not claim a WAL truncation that a
reader prevented.

The claims are about SQLite's own files, so these data dirs keep SQLite on either
``--store`` run (what erasure achieves on PostgreSQL is tested in
tests/governance/test_erasure.py).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from tests.api.conftest import auth
from tests.conftest import DATA, make_app
from tests.pg import use_sqlite
from visage.api.app import create_app
from visage.config import Settings
from visage.core import Visage
from visage.gallery import repository as repo
from visage.gallery.live import CACHE_FILE, INDEX_KEY, JOURNAL_FILE
from visage.governance import review as gov
from visage.governance.access import Role
from visage.governance.erasure import WAL_TRUNCATED
from visage.store import crypto
from visage.store.keyring import KeyDestroyedError
from visage.store.schema import ReviewRow, TemplateRow
from visage.usecases.erase import erase
from visage.usecases.keys import create_key
from visage.usecases.subjects import withdraw_consent

PURPOSE = "door"
_HEAD = 8  # version header of index.bin and of each journal record
_LEN = 4


@dataclass(frozen=True)
class Populated:
    home: Path
    enroller: dict[str, str]
    operator: dict[str, str]
    ada: str
    bob: str


@dataclass
class Setup:
    core: Visage
    client: TestClient
    enroller: dict[str, str]
    operator: dict[str, str]
    ada: str
    bob: str


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Populated:
    """Two subjects enrolled through the API (Ada twice, Bob once), built once: the index
    cache and its journal exist, the sealed templates are in the database."""
    home = tmp_path_factory.mktemp("deletions") / "home"
    use_sqlite(home)
    core = make_app(home, models=shared_app)
    enroller = auth(create_key(core, Role.enroller, []).key)
    operator = auth(create_key(core, Role.operator, [PURPOSE]).key)
    with TestClient(
        create_app(core, identify_per_minute=10_000, housekeeping=False, watch_cameras=False)
    ) as client:
        ids = []
        for name, ref in (("Ada", "FORM-A"), ("Bob", "FORM-B")):
            body = {"name": name, "consent": {"reference": ref, "purposes": [PURPOSE]}}
            ids.append(client.post("/v1/subjects", json=body, headers=enroller).json()["id"])
        s = Setup(core, client, enroller, operator, ids[0], ids[1])
        photos = [(s.ada, "joe_biden/1.jpg"), (s.bob, "barack_obama/1.jpg")]
        photos.append((s.ada, "joe_biden/2.jpg"))
        for i, (sid, photo) in enumerate(photos):
            if i == 2:  # a search writes the cache; the last enrolment goes to its journal
                assert _identify(s, DATA, "joe_biden/1.jpg")[:1] == [s.ada]
            r = client.post(
                f"/v1/subjects/{sid}/templates",
                headers=enroller,
                content=(DATA / "people" / photo).read_bytes(),
            )
            assert r.json()["enrolled"], r.text
    core.close()
    assert (home / CACHE_FILE).is_file() and (home / JOURNAL_FILE).is_file()
    return Populated(home, enroller, operator, s.ada, s.bob)


@pytest.fixture()
def setup(tmp_path: Path, populated: Populated, shared_app: Visage) -> Iterator[Setup]:
    """A copy of the populated data directory, served through the API."""
    p = populated
    home = tmp_path / "home"
    use_sqlite(home)
    shutil.copytree(p.home, home)
    core = Visage(Settings(home=home, database_url=None))
    core._analyzer = shared_app.analyzer
    with TestClient(
        create_app(core, identify_per_minute=10_000, housekeeping=False, watch_cameras=False)
    ) as client:
        yield Setup(core, client, p.enroller, p.operator, p.ada, p.bob)
    core.close()


def _templates(core: Visage, subject_id: str) -> list[tuple[str, bytes, bytes]]:
    """(template id, sealed blob, plaintext float32 bytes) of a subject's templates."""
    key = core.keyring.get(subject_id)
    with core.store.session() as session:
        rows = session.scalars(select(TemplateRow).where(TemplateRow.subject_id == subject_id))
        return [
            (
                t.id,
                t.sealed,
                crypto.open_sealed(key, t.sealed, repo._aad(subject_id, t.id, t.model_id)),
            )
            for t in rows
        ]


def _slices(blob: bytes) -> list[bytes]:
    """The blob and distinctive 32-byte pieces of it (a page split may cut it)."""
    mid = len(blob) // 2
    return [blob, blob[:32], blob[mid : mid + 32], blob[-32:]]


def _files_holding(home: Path, needles: list[bytes]) -> list[str]:
    """Every file of the data directory (models aside) that contains one of the needles."""
    found = []
    for path in sorted(home.rglob("*")):
        if path.is_file() and "models" not in path.relative_to(home).parts:
            content = path.read_bytes()
            found += [f"{path.name}@{content.find(n)}" for n in needles if n in content]
    return found


def _index_plaintext(core: Visage) -> bytes:
    """What the index cache and its journal reveal to someone holding the key files."""
    keyring = core.keyring
    try:
        key = keyring.get(INDEX_KEY)
    except KeyDestroyedError:
        return b""
    out = b""
    cache = core.home / CACHE_FILE
    if cache.is_file():
        blob = cache.read_bytes()
        out += crypto.open_sealed(key, blob[_HEAD:], blob[:_HEAD])
    journal = core.home / JOURNAL_FILE
    if journal.is_file():
        data, at = journal.read_bytes(), 0
        while at + _HEAD + _LEN <= len(data):
            head = data[at : at + _HEAD]
            size = int.from_bytes(data[at + _HEAD : at + _HEAD + _LEN], "big")
            start = at + _HEAD + _LEN
            out += crypto.open_sealed(key, data[start : start + size], head)
            at = start + size
    return out


def _assert_recoverable(s: Setup, sealed: bytes, plain: bytes) -> None:
    """Precondition: before the deletion the attack does find the template."""
    assert _files_holding(s.core.home, _slices(sealed)), "sealed template not on disk"
    assert plain[:64] in _index_plaintext(s.core), "template not in the index cache"


def _assert_gone(s: Setup, sealed: bytes, plain: bytes) -> None:
    assert _files_holding(s.core.home, _slices(sealed)) == []
    index = _index_plaintext(s.core)
    assert plain[:64] not in index and plain[64:128] not in index


def _identify(s: Setup, data: Path, photo: str) -> list[str]:
    r = s.client.post(
        f"/v1/identify?purpose={PURPOSE}",
        headers=s.operator,
        content=(data / "people" / photo).read_bytes(),
    )
    assert r.status_code == 200, r.text
    return [c["subject_id"] for c in r.json()["faces"][0]["candidates"]]


def test_deleted_template_is_in_no_file(setup: Setup, data: Path) -> None:
    s = setup
    (tid, sealed, plain), _kept = _templates(s.core, s.ada)  # the first: joe_biden/1
    _assert_recoverable(s, sealed, plain)

    r = s.client.delete(f"/v1/subjects/{s.ada}/templates/{tid}", headers=s.enroller)
    assert r.status_code == 204, r.text

    _assert_gone(s, sealed, plain)
    # The rewritten index still holds everything else: Ada by her other photo, and Bob.
    assert _identify(s, data, "joe_biden/2.jpg")[:1] == [s.ada]
    assert _identify(s, data, "barack_obama/1.jpg")[:1] == [s.bob]


def test_templates_of_a_withdrawn_consent_are_in_no_file(setup: Setup, data: Path) -> None:
    """Withdrawn from another process (the CLI), which has no index in memory."""
    s = setup
    held = _templates(s.core, s.ada)
    for _, sealed, plain in held:
        _assert_recoverable(s, sealed, plain)

    other = Visage(Settings(home=s.core.home, database_url=None))
    try:
        assert withdraw_consent(other, s.ada, "FORM-A").templates_deleted == 2
    finally:
        other.close()

    for _, sealed, plain in held:
        _assert_gone(s, sealed, plain)
    assert _identify(s, data, "barack_obama/1.jpg")[:1] == [s.bob]  # rebuilt, still whole


def _face_crop(data: Path) -> bytes:
    import io

    with Image.open(data / "people/joe_biden/2.jpg") as img:
        w, h = img.size
        crop = img.convert("RGB").crop((w // 4, h // 6, 3 * w // 4, 5 * h // 6))
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_probe_of_a_rejected_review_is_in_no_file(setup: Setup, data: Path) -> None:
    s = setup
    with s.core.store.session() as session:
        row = gov.open_review(
            session,
            s.core.keyring,
            gov.Candidate(s.ada, PURPOSE, 0.97, 0.925, 0.8, "identify"),
            _face_crop(data),
        )
        review_id, sealed = row.id, row.probe
    assert sealed is not None
    assert _files_holding(s.core.home, _slices(sealed)), "sealed probe not on disk"
    reviewer = auth(create_key(s.core, Role.reviewer, [PURPOSE], owner="rita").key)

    r = s.client.post(f"/v1/reviews/{review_id}/reject", headers=reviewer)
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text

    assert _files_holding(s.core.home, _slices(sealed)) == []
    with s.core.store.session() as session:
        assert session.get(ReviewRow, review_id).probe is None  # type: ignore[union-attr]


def test_certificate_does_not_claim_a_truncation_a_reader_prevented(setup: Setup) -> None:
    s = setup
    sealed = [blob for _, blob, _ in _templates(s.core, s.ada)]
    reader = sqlite3.connect(s.core.home / "visage.db", isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM subjects").fetchone()[0] == 2  # a snapshot

    cert = erase(s.core, s.ada)

    assert cert.verify()
    assert cert.body.wal_truncated is False and cert.body.partial is True
    assert WAL_TRUNCATED not in cert.body.storage
    assert any("NOT truncated" in step for step in cert.body.storage)

    reader.execute("ROLLBACK")
    reader.close()
    follow_up = s.core.store.scrub()  # the next deletion's scrub completes the job
    assert follow_up.wal_truncated and follow_up.secure_delete
    assert (s.core.home / "visage.db-wal").stat().st_size == 0
    assert _files_holding(s.core.home, [n for b in sealed for n in _slices(b)]) == []


def test_certificate_claims_truncation_only_when_it_happened(setup: Setup) -> None:
    cert = erase(setup.core, setup.bob)
    assert cert.body.wal_truncated is True and cert.body.partial is False
    assert WAL_TRUNCATED in cert.body.storage
    assert (setup.core.home / "visage.db-wal").stat().st_size == 0
