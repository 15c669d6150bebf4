"""Enrolment and 1:N identification end to end, on real photos and a real SQLite file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import PEOPLE_PURPOSE
from visage.core import Visage
from visage.errors import ConsentError, InputError, NotFoundError
from visage.store.schema import ConsentRow
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, list_subjects, make_consent, show_subject

SCENES = {
    "two_people.jpg": {"barack_obama", "joe_biden"},
    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
    "obama_and_biden.jpg": {"barack_obama", "joe_biden"},
}


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_identify_names_everyone_present_and_nobody_else(
    enrolled_app: Visage, data: Path, scene: str
) -> None:
    result = identify(enrolled_app, data / "scenes" / scene, PEOPLE_PURPOSE)
    named = [f.candidates[0].name for f in result.faces if f.candidates]
    assert sorted(named) == sorted(SCENES[scene])
    for face in result.faces:
        for c in face.candidates:
            assert c.score >= result.threshold


def test_bystander_in_scene_is_not_matched(enrolled_app: Visage, data: Path) -> None:
    result = identify(enrolled_app, data / "scenes/obama_and_biden.jpg", PEOPLE_PURPOSE)
    assert len(result.faces) == 3
    assert sum(1 for f in result.faces if not f.candidates) == 1


def test_purpose_must_be_covered_by_consent(enrolled_app: Visage, data: Path) -> None:
    result = identify(enrolled_app, data / "scenes/two_people.jpg", "marketing")
    assert len(result.faces) == 2
    assert all(not f.candidates for f in result.faces)


def test_expired_and_withdrawn_consent_stop_matching(fresh_app: Visage, data: Path) -> None:
    photo = data / "people/joe_biden/1.jpg"
    subject = add_subject(fresh_app, "Joe", make_consent("form-7", ["door"])).id
    assert enroll(fresh_app, subject, [photo]).enrolled
    assert identify(fresh_app, photo, "door").faces[0].candidates

    with fresh_app.store.session() as s:
        row = s.query(ConsentRow).filter_by(subject_id=subject).one()
        row.expires_on = date.today() - timedelta(days=1)
    assert not identify(fresh_app, photo, "door").faces[0].candidates

    with fresh_app.store.session() as s:
        row = s.query(ConsentRow).filter_by(subject_id=subject).one()
        row.expires_on = None
        row.withdrawn_at = datetime.now(UTC)
    assert not identify(fresh_app, photo, "door").faces[0].candidates
    with pytest.raises(ConsentError):
        enroll(fresh_app, subject, [photo])


def test_enrolment_rejections_have_reasons(fresh_app: Visage, data: Path, tmp_path: Path) -> None:
    subject = add_subject(fresh_app, "Barack", make_consent("form-1", ["door"])).id
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((400, 400, 3), 200, np.uint8)).save(blank)
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes((data / "people/barack_obama/1.jpg").read_bytes()[:3000])
    tiny = tmp_path / "tiny.png"  # the face becomes about 31 px wide
    Image.open(data / "hard/obama_240p.jpg").resize((256, 144)).save(tiny)
    report = enroll(
        fresh_app,
        subject,
        [
            data / "people/barack_obama/1.jpg",
            data / "scenes/two_people.jpg",
            blank,
            corrupt,
            tiny,
        ],
    )
    assert [Path(e.image).name for e in report.enrolled] == ["1.jpg"]
    reasons = {Path(r.image).name: r.reason for r in report.rejected}
    assert "2 faces found" in reasons["two_people.jpg"]
    assert reasons["wall.png"] == "no face found"
    assert "truncated or corrupt" in reasons["broken.jpg"]
    assert "too small" in reasons["tiny.png"]
    assert show_subject(fresh_app, subject).templates == 1


def test_enrolment_keeps_no_photo_and_no_plaintext(fresh_app: Visage, data: Path) -> None:
    photo = data / "people/kit_harington/1.jpg"
    subject = add_subject(fresh_app, "Kit", make_consent("form-2", ["door"])).id
    enroll(fresh_app, subject, [photo])
    embedding = fresh_app.analyzer.analyze(fresh_app.load_image(photo).pixels)[0].embedding
    assert embedding is not None
    needle = embedding.astype("<f4").tobytes()
    for f in fresh_app.home.rglob("*"):
        if f.is_file():
            content = f.read_bytes()
            assert needle[:64] not in content, f"plaintext template bytes in {f}"
            assert photo.read_bytes()[1000:1064] not in content, f"photo bytes in {f}"


def test_subject_listing_and_unknown_ids(fresh_app: Visage) -> None:
    sid = add_subject(
        fresh_app, "Ada", make_consent("form-3", ["door", "Payroll"], expires_on=date(2099, 1, 1))
    ).id
    (listed,) = list_subjects(fresh_app)
    assert listed.id == sid and listed.templates == 0
    assert listed.consents[0].purposes == ["door", "payroll"]
    assert listed.consents[0].valid
    with pytest.raises(NotFoundError):
        show_subject(fresh_app, "0" * 32)
    with pytest.raises(NotFoundError):
        enroll(fresh_app, "0" * 32, [])


def test_consent_is_required_to_create_a_subject(fresh_app: Visage) -> None:
    with pytest.raises(ConsentError):
        make_consent("", ["door"])
    with pytest.raises(ConsentError):
        make_consent("form", [])
    with pytest.raises(ConsentError, match="legal basis"):
        make_consent("form", ["door"], legal_basis="because")


def test_identify_bad_input(enrolled_app: Visage, tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_text("hello")
    with pytest.raises(InputError):
        identify(enrolled_app, bad, PEOPLE_PURPOSE)
