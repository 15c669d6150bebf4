"""Attack on the hard line "no bulk import of faces without a consent reference per person":
an enroller with one consent record tries to import many people's photos under it, as one
subject (a folder on the CLI, several files on the API). Each photo whose face is not the
person of the subject's other photos is refused (``other_person``), stored nowhere, and
the people it shows are not found by a search."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import auth
from tests.cli_runner import run
from tests.conftest import make_app
from visage.api.app import create_app
from visage.core import Visage
from visage.governance.access import Role
from visage.usecases import subjects as subjects_uc
from visage.usecases.enroll import RejectCode, enroll
from visage.usecases.identify import identify
from visage.usecases.keys import create_key
from visage.usecases.subjects import make_consent

PURPOSE = "access-control"


def _names(core: Visage, image: Path) -> set[str]:
    found = identify(core, image, purpose=PURPOSE).faces
    return {c.name for f in found for c in f.candidates[:1]}


def test_a_folder_of_strangers_under_one_consent_is_refused(
    tmp_path: Path, data: Path, shared_app: Visage
) -> None:
    folder = tmp_path / "everyone"
    folder.mkdir()
    for i, person in enumerate(["joe_biden", "barack_obama", "kit_harington", "rose_leslie"]):
        shutil.copy(data / f"people/{person}/1.jpg", folder / f"{i}-{person}.jpg")
    shutil.copy(data / "people/joe_biden/2.jpg", folder / "4-joe_biden.jpg")
    home = tmp_path / "home"
    core = make_app(home, models=shared_app)
    subject = subjects_uc.add_subject(core, "Joe", make_consent("F-1", [PURPOSE]))
    core.close()

    r = run(home, "enroll", subject.id, str(folder), "--json")
    assert r.returncode == 2, r.stderr  # some photos rejected
    report = json.loads(r.stdout)
    assert sorted(Path(e["image"]).name for e in report["enrolled"]) == [
        "0-joe_biden.jpg",
        "4-joe_biden.jpg",
    ]
    refused = {Path(e["image"]).name: e["code"] for e in report["rejected"]}
    assert refused == {
        name: RejectCode.other_person.value
        for name in ("1-barack_obama.jpg", "2-kit_harington.jpg", "3-rose_leslie.jpg")
    }

    core = make_app(home, models=shared_app)
    try:
        assert len(subjects_uc.show_subject(core, subject.id).template_list) == 2
        assert _names(core, data / "people/joe_biden/2.jpg") == {"Joe"}
        for stranger in ("barack_obama/2.jpg", "kit_harington/2.jpg", "rose_leslie/2.jpg"):
            assert _names(core, data / "people" / stranger) == set(), stranger
    finally:
        core.close()


def test_the_api_refuses_a_stranger_added_to_a_subject(
    tmp_path: Path, data: Path, shared_app: Visage
) -> None:
    core = make_app(tmp_path / "home", models=shared_app)
    key = create_key(core, Role.enroller, [], owner="Eve").key
    try:
        with TestClient(create_app(core)) as client:
            body = {"name": "Obama", "consent": {"reference": "F-2", "purposes": [PURPOSE]}}
            sid = client.post("/v1/subjects", headers=auth(key), json=body).json()["id"]
            files = [
                ("image", ("a.jpg", (data / "people/barack_obama/1.jpg").read_bytes())),
                ("image", ("b.jpg", (data / "people/barack_obama/2.jpg").read_bytes())),
                ("image", ("c.jpg", (data / "people/angelina_jolie/1.jpg").read_bytes())),
            ]
            r = client.post(f"/v1/subjects/{sid}/templates", headers=auth(key), files=files)
            assert r.status_code == 200, r.text
            assert len(r.json()["enrolled"]) == 2
            [rejected] = r.json()["rejected"]
            assert rejected["code"] == "other_person" and "own consent" in rejected["reason"]
            # Later, alone: still compared with the subject's templates.
            alone = client.post(
                f"/v1/subjects/{sid}/templates",
                headers=auth(key),
                content=(data / "people/kit_harington/1.jpg").read_bytes(),
            )
            assert alone.status_code == 422
            assert alone.json()["rejected"][0]["code"] == "other_person"
    finally:
        core.close()


def test_photos_of_one_person_are_all_taken(tmp_path: Path, data: Path, shared_app: Visage) -> None:
    """The check is no obstacle to the normal case: every photo of people/ of one person
    (different years, light and angles) joins that person's subject."""
    core = make_app(tmp_path / "home", models=shared_app)
    try:
        for person in ("barack_obama", "alex_lacamoire", "kit_harington", "rose_leslie"):
            sid = subjects_uc.add_subject(core, person, make_consent(person, [PURPOSE])).id
            photos = sorted((data / "people" / person).iterdir())
            report = enroll(core, sid, photos)
            assert [r.reason for r in report.rejected] == [], person
            assert len(report.enrolled) == len(photos)
    finally:
        core.close()
