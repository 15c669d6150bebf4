"""Reference face crops and enrolment verdicts (issue 13, screens 3 and 5).

One data dir for the module: a subject enrolled from two real photos, and one batch of
photos that each fail for a different reason, so every verdict is checked on real pixels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import make_app
from visage.core import Visage
from visage.errors import MasterKeyError, NotFoundError
from visage.gallery import repository as repo
from visage.governance.access import ForbiddenError, Principal, Role
from visage.store.schema import TemplateRow
from visage.usecases.enroll import (
    EnrollReport,
    NotEnrolableError,
    RejectCode,
    check_enrolable,
    enroll,
)
from visage.usecases.keys import authenticate, create_key
from visage.usecases.references import reference_image, template_references
from visage.usecases.subjects import add_subject, delete_template, make_consent

PURPOSE = "access-control"
JPEG_SOI = b"\xff\xd8\xff"


@dataclass
class World:
    core: Visage
    subject_id: str
    report: EnrollReport
    verdicts: EnrollReport
    who: dict[Role, Principal]


def _jpeg(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    assert ok
    return bytes(data.tobytes())


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path) -> Iterator[World]:
    core = make_app(tmp_path_factory.mktemp("references"), models=shared_app)
    sid = add_subject(core, "Barack", make_consent("R-1", [PURPOSE])).id
    report = enroll(core, sid, [data / "people/barack_obama/1.jpg", data / "hard/obama_720p.jpg"])
    face = core.load_image(data / "people/barack_obama/2.jpg").pixels
    h, w_ = face.shape[:2]
    blank = np.full((480, 640, 3), 200, np.uint8)
    verdicts = enroll(
        core,
        sid,
        [
            _jpeg(blank),  # upload #1: no face
            data / "scenes/two_people.jpg",
            _jpeg(cv2.resize(face, (w_ // 8, h // 8), interpolation=cv2.INTER_AREA)),  # #3
            _jpeg(cv2.GaussianBlur(face, (61, 61), 0)),  # upload #4: blurred
            b"GIF89a not really an image",  # upload #5
        ],
    )
    who = {}
    for role in Role:
        token = create_key(core, role, [PURPOSE] if role is Role.operator else [], owner="Ana").key
        who[role] = authenticate(core, token)
    yield World(core, sid, report, verdicts, who)
    core.close()


def test_each_rejected_photo_has_its_code_and_reason(w: World) -> None:
    got = {r.image: (r.code, r.reason) for r in w.verdicts.rejected}
    assert not w.verdicts.enrolled
    assert got["upload #1"] == (RejectCode.no_face, "no face found")
    two = next(v for k, v in got.items() if k.endswith("two_people.jpg"))
    assert two[0] is RejectCode.several_faces and "2 faces found" in two[1]
    assert got["upload #3"][0] is RejectCode.too_small and "too small" in got["upload #3"][1]
    assert got["upload #4"][0] is RejectCode.blurred and "quality too low" in got["upload #4"][1]
    assert got["upload #5"][0] is RejectCode.unreadable
    # Codes travel as plain strings for the console to translate.
    assert w.verdicts.model_dump(mode="json")["rejected"][0]["code"] == "no_face"


def test_a_face_turned_away_is_refused_with_its_code(w: World, data: Path) -> None:
    """No photo in shared/faces turns away far enough; the real face's measured pose is
    turned instead (the check reads only the quality the pipeline measured)."""
    faces = w.core.analyzer.analyze(w.core.load_image(data / "people/joe_biden/1.jpg").pixels)
    face = faces[0]
    assert check_enrolable(faces, w.core.settings.min_face_px) is face
    turned = dataclasses.replace(face, quality=dataclasses.replace(face.quality, yaw=0.7))
    with pytest.raises(NotEnrolableError) as err:
        check_enrolable([turned], w.core.settings.min_face_px)
    assert err.value.code is RejectCode.turned_away and "turned" in err.value.message


def test_the_reference_is_sealed_and_opens_to_the_aligned_face(w: World) -> None:
    assert len(w.report.enrolled) == 2
    with w.core.store.session() as session:
        rows = list(session.query(TemplateRow).filter_by(subject_id=w.subject_id))
        raw = {r.id: r.reference for r in rows}
        opened = {r.id: repo.reference_of(w.core.keyring, r) for r in rows}
    for tid, sealed in raw.items():
        crop = opened[tid]
        assert crop is not None and crop.startswith(JPEG_SOI) and len(crop) < 20_000
        assert sealed is not None and not sealed.startswith(JPEG_SOI)  # not a JPEG at rest
        assert crop[200:264] not in sealed
        pixels = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
        assert pixels.shape == (150, 150, 3)
    # The crop is a face, and the same person's: it matches the template it was cut for.
    crop = opened[w.report.enrolled[0].template_id]
    assert crop is not None
    faces = w.core.analyzer.analyze(w.core.load_image(crop).pixels)
    assert faces and faces[0].embedding is not None
    with w.core.store.session() as session:
        _, matrix = repo.all_templates(session, w.core.keyring, w.core.analyzer.model_id)
    assert float(np.max(matrix @ faces[0].embedding)) > 0.9


def test_sealing_is_bound_to_subject_and_template(w: World) -> None:
    """A sealed crop copied onto another template row does not open."""
    a, b = (e.template_id for e in w.report.enrolled)
    with w.core.store.session() as session:
        row_a, row_b = session.get(TemplateRow, a), session.get(TemplateRow, b)
        assert row_a is not None and row_b is not None
        moved = TemplateRow(
            id=row_b.id, subject_id=row_b.subject_id, model_id="", sealed=b"", quality=0.0
        )
        moved.reference = row_a.reference
        with pytest.raises(MasterKeyError, match="failed authentication"):
            repo.reference_of(w.core.keyring, moved)
        session.expunge_all()


def test_enrollers_and_reviewers_see_the_references(w: World) -> None:
    for role in (Role.enroller, Role.reviewer):
        refs = template_references(w.core, w.subject_id, w.who[role])
        assert {r.template_id for r in refs} == {e.template_id for e in w.report.enrolled}
        assert [r.quality for r in refs] == sorted((r.quality for r in refs), reverse=True)
        assert all(r.reference_jpeg and r.reference_jpeg.startswith(JPEG_SOI) for r in refs)
        assert all(r.model_id == w.core.analyzer.model_id for r in refs)
        one = reference_image(w.core, w.subject_id, refs[0].template_id, w.who[role])
        assert one == refs[0].reference_jpeg


@pytest.mark.parametrize("role", [Role.operator, Role.auditor, Role.admin])
def test_other_roles_are_refused(w: World, role: Role) -> None:
    tid = w.report.enrolled[0].template_id
    with pytest.raises(ForbiddenError, match=f"role {role.value} may not"):
        template_references(w.core, w.subject_id, w.who[role])
    with pytest.raises(ForbiddenError):
        reference_image(w.core, w.subject_id, tid, w.who[role])


def test_unknown_subject_or_template_is_not_found(w: World) -> None:
    enroller = w.who[Role.enroller]
    with pytest.raises(NotFoundError):
        template_references(w.core, "0" * 32, enroller)
    with pytest.raises(NotFoundError):
        reference_image(w.core, w.subject_id, "0" * 32, enroller)


def test_the_reference_goes_with_its_template(
    tmp_path: Path, shared_app: Visage, data: Path
) -> None:
    core = make_app(tmp_path / "home", models=shared_app)
    try:
        sid = add_subject(core, "Kit", make_consent("R-2", [PURPOSE])).id
        tid = enroll(core, sid, [data / "people/kit_harington/1.jpg"]).enrolled[0].template_id
        with core.store.session() as session:
            row = session.get(TemplateRow, tid)
            assert row is not None and row.reference is not None
            sealed = row.reference
        delete_template(core, sid, tid)
        enroller = authenticate(core, create_key(core, Role.enroller, []).key)
        assert template_references(core, sid, enroller) == []
        with pytest.raises(NotFoundError):
            reference_image(core, sid, tid, enroller)
        for f in core.home.rglob("*"):
            if f.is_file():
                assert sealed[:48] not in f.read_bytes(), f"deleted reference crop left in {f}"
    finally:
        core.close()
