"""The Subjects screen over real HTTP: roles, adding a subject with consent, enrolment of real
photos with verdicts, reference crops, consents, access export, erasure with a typed name,
paging and search, French, CSRF."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import page_csrf, sign_in
from visage.core import Visage
from visage.governance import audit
from visage.governance.audit import AuditEntry
from visage.usecases import subjects as subjects_uc

SUBJECT_LINK = re.compile(r'href="/subjects/([0-9a-f]{32})"')


def audit_entries(core: Visage, operation: str, subject_id: str) -> list[AuditEntry]:
    with core.store.session() as session:
        return [
            e for e in audit.entries(session, operation=operation) if e.subject_id == subject_id
        ]


def add_via_form(client: TestClient, name: str, **fields: str) -> str:
    """Add a subject through the "Add subject" form; returns its id."""
    token = page_csrf(client, "/subjects/new")
    data = {
        "csrf": token,
        "name": name,
        "reference": f"FORM-{name}",
        "purposes": "access-control",
        "legal_basis": "explicit-consent",
        "expires_on": "",
        **fields,
    }
    response = client.post("/subjects/new", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/subjects/([0-9a-f]{32})\?notice=added", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


@pytest.fixture(scope="module")
def enzo(server: TestClient) -> Iterator[TestClient]:
    """The enroller, signed in once for the module."""
    with TestClient(server.app, base_url="http://testserver") as client:
        yield sign_in(client, "enzo")


@pytest.fixture(scope="module")
def enrolled(enzo: TestClient, data: Path) -> tuple[str, str]:
    """A subject added through the form, then three real photos enrolled through the page:
    two of Barack Obama and a scene with two people (rejected). Returns (id, result page)."""
    subject_id = add_via_form(enzo, "Barack Obama")
    token = page_csrf(enzo, f"/subjects/{subject_id}")
    photos = [
        data / "people/barack_obama/1.jpg",
        data / "people/barack_obama/2.jpg",
        data / "scenes/two_people.jpg",
    ]
    response = enzo.post(
        f"/subjects/{subject_id}/enrol",
        data={"csrf": token},
        files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos],
    )
    assert response.status_code == 200, response.text
    return subject_id, response.text


def test_other_roles_are_refused_and_signed_out_is_redirected(
    server: TestClient, as_user: Callable[[str], TestClient]
) -> None:
    for path in ("/subjects", "/subjects/new"):
        response = TestClient(server.app).get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith(f"/sign-in?next={path}")
    for name in ("olga", "aude", "rita", "ada"):
        client = as_user(name)
        for path in ("/subjects", "/subjects/new", "/subjects/" + "0" * 32):
            response = client.get(path)
            assert response.status_code == 403, (name, path)
            assert "<h1>" in response.text and "Traceback" not in response.text
        token = page_csrf(client, "/")
        refused = client.post(
            "/subjects/new",
            data={"csrf": token, "name": "X", "reference": "R", "purposes": "demo"},
        )
        assert refused.status_code == 403


def test_add_subject_records_consent_and_audits_the_user(
    enzo: TestClient, console_core: Visage
) -> None:
    listing = enzo.get("/subjects")
    assert listing.status_code == 200
    assert 'href="/subjects/new"' in listing.text and "Add subject" in listing.text
    form = enzo.get("/subjects/new").text
    for label in ("Name", "Consent reference", "Purposes", "Legal basis", "Expires"):
        assert re.search(rf'<label for="\w+">{label}</label>', form), label
    subject_id = add_via_form(
        enzo,
        "Ada Lovelace",
        reference="FORM-2026-017",
        purposes="access-control, demo",
        legal_basis="employment",
        expires_on="2027-12-31",
    )
    page = enzo.get(f"/subjects/{subject_id}?notice=added")
    assert page.status_code == 200
    assert "<h1>Ada Lovelace</h1>" in page.text
    assert "Subject added." in page.text
    assert "FORM-2026-017" in page.text and "access-control, demo" in page.text
    assert "Employment" in page.text and "2027-12-31" in page.text
    detail = subjects_uc.show_subject(console_core, subject_id)
    assert detail.name == "Ada Lovelace"
    (consent,) = detail.consents
    assert consent.purposes == ["access-control", "demo"] and consent.legal_basis == "employment"
    (entry,) = audit_entries(console_core, "subject.create", subject_id)
    assert entry.actor == "user:enzo" and entry.role == "enroller"
    assert "FORM-2026-017" not in json.dumps(entry.details)  # only a keyed hash of it


def test_invalid_subject_form_is_refused_with_the_values_kept(
    enzo: TestClient, console_core: Visage
) -> None:
    before = subjects_uc.page_subjects(console_core).total
    token = page_csrf(enzo, "/subjects/new")
    response = enzo.post(
        "/subjects/new",
        data={"csrf": token, "name": "Grace Hopper", "reference": "F-1", "purposes": ""},
    )
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "Purposes" in response.text
    assert 'value="Grace Hopper"' in response.text
    bad_basis = {
        "csrf": token,
        "name": "Grace Hopper",
        "reference": "F-1",
        "purposes": "demo",
        "legal_basis": "because",
    }
    english = enzo.post("/subjects/new", data=bad_basis)
    assert english.status_code == 422 and "Legal basis: must be one of:" in english.text
    # The same refusal in French: the label and pydantic's problem, both translated.
    french = enzo.post("/subjects/new", data=bad_basis, headers={"Accept-Language": "fr"})
    assert french.status_code == 422
    assert "Base légale: doit être l\u2019une des valeurs" in french.text
    assert "Input should be" not in french.text
    assert subjects_uc.page_subjects(console_core).total == before


def test_enrolment_gives_each_photo_a_verdict(
    enzo: TestClient, enrolled: tuple[str, str], console_core: Visage
) -> None:
    subject_id, html = enrolled
    assert "2 of 3 photos enrolled." in html
    rows = re.findall(r'<th scope="row">([^<]+)</th>\s*<td><span class="badge (\w+)">', html)
    assert rows == [("1.jpg", "ok"), ("2.jpg", "ok"), ("two_people.jpg", "bad")]
    assert "Several faces: an enrolment photo must show one person." in html
    assert "2 faces found" in html
    detail = subjects_uc.show_subject(console_core, subject_id)
    assert len(detail.template_list) == 2
    entries = audit_entries(console_core, "enroll", subject_id)
    assert len(entries) == 2 and {e.actor for e in entries} == {"user:enzo"}
    # The subject page shows both templates with their quality and reference crop.
    page = enzo.get(f"/subjects/{subject_id}").text
    crops = re.findall(rf'src="(/subjects/{subject_id}/templates/\w+/reference\.jpg)"', page)
    assert len(crops) == 2
    assert page.count("Quality 0.") + page.count("Quality 1.") == 2
    crop = enzo.get(crops[0])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert crop.headers["cache-control"] == "no-store" and crop.content[:2] == b"\xff\xd8"


def test_reference_crops_are_for_enrollers_and_reviewers_only(
    enrolled: tuple[str, str], as_user: Callable[[str], TestClient], server: TestClient
) -> None:
    subject_id, html = enrolled
    (path,) = re.findall(rf"/subjects/{subject_id}/templates/\w+/reference\.jpg", html)[:1]
    assert as_user("rita").get(path).content[:2] == b"\xff\xd8"
    assert as_user("olga").get(path).status_code == 403
    assert TestClient(server.app).get(path, follow_redirects=False).status_code == 303


def test_unreadable_upload_and_empty_form_are_clear_errors(
    enzo: TestClient, enrolled: tuple[str, str]
) -> None:
    subject_id, _ = enrolled
    token = page_csrf(enzo, f"/subjects/{subject_id}")
    response = enzo.post(
        f"/subjects/{subject_id}/enrol",
        data={"csrf": token},
        files=[("photos", ("notes.jpg", b"not an image at all", "image/jpeg"))],
    )
    assert response.status_code == 200
    assert "0 of 1 photos enrolled." in response.text and "Not a readable image." in response.text
    empty = enzo.post(f"/subjects/{subject_id}/enrol", data={"csrf": token})
    assert empty.status_code == 422 and "choose at least one photo" in empty.text


def test_the_subject_page_in_french(enzo: TestClient, enrolled: tuple[str, str]) -> None:
    subject_id, _ = enrolled
    fr = {"Accept-Language": "fr-FR,fr;q=0.9"}
    page = enzo.get(f"/subjects/{subject_id}", headers=fr)
    assert page.status_code == 200 and '<html lang="fr"' in page.text
    for french in (
        "Enregistrements de consentement",
        "Référence du consentement",
        "Ajouter un consentement",
        "Photos",
        "Enrôler",
        "Exporter",
        "Effacer",
        "Tapez le nom pour confirmer",
        "Retirer",
    ):
        assert french in page.text, french
    for english in ("Consent records", "Type the name to confirm", "Add consent"):
        assert english not in page.text, english
    listing = enzo.get("/subjects", headers=fr).text
    assert "Ajouter une personne" in listing and "Rechercher" in listing
    token = page_csrf(enzo, f"/subjects/{subject_id}")
    rejected = enzo.post(
        f"/subjects/{subject_id}/enrol",
        data={"csrf": token},
        files=[("photos", ("x.png", b"\x89PNG broken", "image/png"))],
        headers=fr,
    )
    assert "Image illisible." in rejected.text and "Refusée" in rejected.text


def test_consents_can_be_added_and_withdrawn(enzo: TestClient, console_core: Visage) -> None:
    subject_id = add_via_form(enzo, "Rose Leslie", reference="FORM-R1")
    token = page_csrf(enzo, f"/subjects/{subject_id}")
    added = enzo.post(
        f"/subjects/{subject_id}/consents",
        data={"csrf": token, "reference": "FORM-R2", "purposes": "demo", "expires_on": ""},
        follow_redirects=False,
    )
    assert added.status_code == 303
    page = enzo.get(added.headers["location"]).text
    assert "Consent record added." in page and "FORM-R2" in page
    assert [e.actor for e in audit_entries(console_core, "consent.add", subject_id)] == [
        "user:enzo"
    ]
    expired = enzo.post(
        f"/subjects/{subject_id}/consents",
        data={"csrf": token, "reference": "FORM-R3", "purposes": "demo", "expires_on": "soon"},
    )
    assert expired.status_code == 422 and "Expires" in expired.text
    withdrawn = enzo.post(
        f"/subjects/{subject_id}/consents/withdraw",
        data={"csrf": token, "reference": "FORM-R1"},
        follow_redirects=False,
    )
    assert withdrawn.headers["location"].endswith("?notice=withdrawn")
    page = enzo.get(withdrawn.headers["location"]).text
    assert "Consent withdrawn." in page and "Withdrawn on" in page
    enzo.post(
        f"/subjects/{subject_id}/consents/withdraw", data={"csrf": token, "reference": "FORM-R2"}
    )
    page = enzo.get(f"/subjects/{subject_id}").text
    assert "No consent record is in force" in page and 'id="enrol-form"' not in page
    (entry, _) = audit_entries(console_core, "consent.withdraw", subject_id)
    assert entry.actor == "user:enzo"
    unknown = enzo.post(
        f"/subjects/{subject_id}/consents/withdraw", data={"csrf": token, "reference": "NOPE"}
    )
    assert unknown.status_code == 404


def test_export_downloads_the_subject_access_archive(
    enzo: TestClient, enrolled: tuple[str, str], console_core: Visage
) -> None:
    subject_id, _ = enrolled
    token = page_csrf(enzo, f"/subjects/{subject_id}")
    response = enzo.post(f"/subjects/{subject_id}/export", data={"csrf": token})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        f'attachment; filename="subject-{subject_id}.zip"'
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        subject = json.loads(zf.read("subject.json"))
        references = [n for n in zf.namelist() if n.startswith("references/")]
    assert subject["id"] == subject_id and subject["name"] == "Barack Obama"
    assert len(subject["template_list"]) == 2 and len(references) == 2
    (entry,) = audit_entries(console_core, "export", subject_id)
    assert entry.actor == "user:enzo"


def test_erase_needs_the_typed_name_then_returns_the_certificate(
    enzo: TestClient, data: Path, console_core: Visage
) -> None:
    subject_id = add_via_form(enzo, "Kit Harington")
    token = page_csrf(enzo, f"/subjects/{subject_id}")
    page = enzo.get(f"/subjects/{subject_id}").text
    assert '<label for="confirm_name">Type the name to confirm</label>' in page
    wrong = enzo.post(
        f"/subjects/{subject_id}/erase", data={"csrf": token, "confirm_name": "Rose Leslie"}
    )
    assert wrong.status_code == 422
    assert "The name typed does not match. Nothing was erased." in wrong.text
    assert subjects_uc.show_subject(console_core, subject_id).name == "Kit Harington"
    assert not audit_entries(console_core, "erase", subject_id)
    empty = enzo.post(f"/subjects/{subject_id}/erase", data={"csrf": token, "confirm_name": ""})
    assert empty.status_code == 422
    erased = enzo.post(
        f"/subjects/{subject_id}/erase", data={"csrf": token, "confirm_name": "kit  harington"}
    )
    assert erased.status_code == 200, erased.text
    assert erased.headers["content-type"] == "application/json"
    assert erased.headers["content-disposition"] == (
        f'attachment; filename="erasure-certificate-{subject_id}.json"'
    )
    certificate = erased.json()
    assert certificate["body"]["subject_id"] == subject_id and certificate["signature"]
    assert "Kit Harington" not in erased.text
    assert enzo.get(f"/subjects/{subject_id}").status_code == 404
    (entry,) = audit_entries(console_core, "erase", subject_id)
    assert entry.actor == "user:enzo"


def test_list_pages_and_searches_on_the_server(enzo: TestClient, console_core: Visage) -> None:
    consent = subjects_uc.make_consent("FORM-BULK", ["demo"])
    ids = [subjects_uc.add_subject(console_core, f"Person {i:03d}", consent).id for i in range(60)]
    total = subjects_uc.page_subjects(console_core).total
    assert total >= 60
    first = enzo.get("/subjects").text
    assert len(SUBJECT_LINK.findall(first)) == 50
    assert f"{total} subjects." in first
    pages = -(-total // 50)
    assert f"Page 1 of {pages}" in first and 'href="/subjects?page=2"' in first
    assert SUBJECT_LINK.findall(first)[0] == ids[-1]  # newest first
    last = enzo.get(f"/subjects?page={pages}").text
    assert len(SUBJECT_LINK.findall(last)) == total - 50 * (pages - 1)
    assert 'rel="prev"' in last and 'rel="next"' not in last
    found = enzo.get("/subjects", params={"q": "  person   007 "}).text
    assert SUBJECT_LINK.findall(found) == [ids[7]]
    assert "1 subjects found for" in found and ">Person 007</a>" in found
    by_id = enzo.get("/subjects", params={"q": ids[42][:8]}).text
    assert ids[42] in SUBJECT_LINK.findall(by_id)
    none = enzo.get("/subjects", params={"q": "Person"}).text
    assert SUBJECT_LINK.findall(none) == [] and "0 subjects found" in none
    assert enzo.get("/subjects?page=0").status_code == 422
    assert enzo.get("/subjects?page=abc").status_code == 422


def test_posts_without_the_csrf_token_are_refused(
    enzo: TestClient, console_core: Visage, enrolled: tuple[str, str]
) -> None:
    subject_id, _ = enrolled
    before = subjects_uc.page_subjects(console_core).total
    for path, form in (
        ("/subjects/new", {"name": "Forged", "reference": "F", "purposes": "demo"}),
        (f"/subjects/{subject_id}/erase", {"confirm_name": "Barack Obama"}),
        (f"/subjects/{subject_id}/consents/withdraw", {"reference": "FORM-Barack Obama"}),
        (f"/subjects/{subject_id}/export", {}),
    ):
        response = enzo.post(path, data={**form, "csrf": "forged"})
        assert response.status_code == 403, path
        assert "reload it" in response.text
    assert subjects_uc.page_subjects(console_core).total == before
    assert subjects_uc.show_subject(console_core, subject_id).consents[0].valid
