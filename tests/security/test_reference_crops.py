"""Reference face crops (issue 13, screen 5): erased with the key, in the access export, and
shown to a reviewer beside the probe without the name or the score.

A reference crop is a face: it must be as hard to get at as the template it belongs to. An
old backup of the database holds the sealed crop; once the subject is erased, nothing opens
it. The subject's own export gives it back to them; a reviewer gets it only for an item they
may review, and only the faces, never who the system thinks it is.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import make_app
from tests.pg import stored_bytes
from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance import review as review_gov
from visage.governance.access import ForbiddenError, Principal, Role
from visage.store import crypto
from visage.store.keyring import KeyDestroyedError
from visage.store.schema import TemplateRow
from visage.usecases.enroll import enroll
from visage.usecases.erase import erase
from visage.usecases.export import build_export
from visage.usecases.identify import identify
from visage.usecases.keys import authenticate, create_key
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.references import template_references
from visage.usecases.review import decide, review_material
from visage.usecases.subjects import add_subject, make_consent

WATCH = "wanted"
JPEG_SOI = b"\xff\xd8\xff"


def _principal(
    core: Visage, role: Role, owner: str, purposes: list[str] | None = None
) -> Principal:
    return authenticate(core, create_key(core, role, purposes or [], owner=owner).key)


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    core = make_app(tmp_path_factory.mktemp("reference-crops"), models=shared_app)
    set_profile(core, ProfileChanges(watchlist_purposes=[WATCH]))
    yield core
    core.close()


def _enrolled(core: Visage, data: Path, name: str, photos: list[str]) -> str:
    sid = add_subject(core, name, make_consent(f"F-{name}", [WATCH])).id
    report = enroll(core, sid, [data / p for p in photos])
    assert len(report.enrolled) == len(photos), report.rejected
    return sid


def test_an_erased_persons_crop_cannot_be_opened_even_from_a_backup(
    core: Visage, data: Path
) -> None:
    # a 250x250 LFW photo: the crop's fate is the claim, not the photo's size
    sid = _enrolled(core, data, "Colin", ["lfw10/Colin_Powell/Colin_Powell_0001.jpg"])
    with core.store.session() as session:  # what a backup of the database holds
        (tid, sealed), *_ = session.execute(
            select(TemplateRow.id, TemplateRow.reference).where(TemplateRow.subject_id == sid)
        ).all()
    assert sealed is not None
    key = core.keyring.get(sid)
    assert crypto.open_sealed(key, sealed, f"template-reference:{sid}:{tid}".encode()).startswith(
        JPEG_SOI
    )
    del key

    erase(core, sid)

    with pytest.raises(KeyDestroyedError):
        core.keyring.get(sid)
    old_row = TemplateRow(id=tid, subject_id=sid, model_id="", sealed=b"", quality=0.0)
    old_row.reference = sealed
    assert repo.reference_of(core.keyring, old_row) is None  # the backup's copy is noise
    for f in core.home.rglob("*"):  # and the live data dir no longer holds it at all
        if f.is_file():
            assert sealed[:48] not in f.read_bytes(), f"erased reference crop left in {f}"
    assert sealed[:48] not in stored_bytes(core.store)  # nor the live database


def test_the_access_export_holds_every_reference_crop(core: Visage, data: Path) -> None:
    sid = _enrolled(core, data, "Kit", ["people/kit_harington/1.jpg", "people/kit_harington/2.jpg"])
    refs = template_references(core, sid, _principal(core, Role.enroller, "Erin"))
    archive, summary = build_export(core, sid)
    files = zipfile.ZipFile(io.BytesIO(archive))
    for ref in refs:
        name = f"references/{ref.template_id}.jpg"
        assert name in summary.files
        assert files.read(name) == ref.reference_jpeg
    assert "references/" in files.read("README.txt").decode()


@pytest.fixture(scope="module")
def pending(core: Visage, data: Path) -> tuple[str, str]:
    """A real watchlist search of a scene: Joe Biden (enrolled from two photos) is queued
    for review. Returns the review id and his subject id."""
    sid = _enrolled(core, data, "Joe Biden", ["people/joe_biden/1.jpg", "people/joe_biden/2.jpg"])
    operator = _principal(core, Role.operator, "Carol", [WATCH])
    result = identify(core, data / "scenes/obama_and_biden.jpg", WATCH, operator.actor)
    ids = [f.review_id for f in result.faces if f.review_id]
    assert len(ids) == 1, result
    return ids[0], sid


def test_a_reviewer_gets_the_probe_and_the_references_but_no_identity(
    core: Visage, pending: tuple[str, str]
) -> None:
    rid, sid = pending
    material = review_material(core, _principal(core, Role.reviewer, "Alice"), rid)
    assert material.id == rid
    assert material.probe_jpeg is not None and material.probe_jpeg.startswith(JPEG_SOI)
    expected = [
        r.reference_jpeg
        for r in template_references(core, sid, _principal(core, Role.enroller, "Erin"))
    ]
    assert material.references == expected and len(expected) == 2  # best quality first
    dumped = material.model_dump_json()
    assert sid not in dumped and "Biden" not in dumped
    assert set(material.model_dump()) == {"id", "probe_jpeg", "references"}


def test_only_a_reviewer_who_may_review_gets_the_material(
    core: Visage, pending: tuple[str, str]
) -> None:
    rid, _ = pending
    for role in (Role.enroller, Role.operator, Role.auditor, Role.admin):
        with pytest.raises(ForbiddenError):
            review_material(core, _principal(core, role, "Dana", [WATCH]), rid)
    with pytest.raises(ForbiddenError, match="someone else must review"):  # who asked
        review_material(core, _principal(core, Role.reviewer, "Carol"), rid)


def test_a_rejected_item_keeps_no_probe(core: Visage, pending: tuple[str, str], data: Path) -> None:
    """A search of its own; ``pending`` enrols Joe Biden (whatever ran before)."""
    operator = _principal(core, Role.operator, "Olga", [WATCH])
    result = identify(core, data / "people/joe_biden/2.jpg", WATCH, operator.actor)
    (rid,) = [f.review_id for f in result.faces if f.review_id]
    bob = _principal(core, Role.reviewer, "Bob")
    decide(core, rid, bob, review_gov.Decision.reject)
    material = review_material(core, _principal(core, Role.reviewer, "Alice"), rid)
    assert material.probe_jpeg is None
