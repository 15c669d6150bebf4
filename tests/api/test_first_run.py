"""Issue 14 §4, tried as a new user would: offline API docs that can authorise, and the
API refusing bad input clearly (profile patches, enrolment, expired consents)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth, image
from visage.governance.access import Role

SUBJECT = {"name": "Joe", "consent": {"reference": "F-14", "purposes": ["access-control"]}}


def test_docs_and_redoc_load_their_scripts_from_this_server(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: ?'([^']+)'", html)
        assert sources, page
        assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
        assert "cdn." not in html
        for src in sources:
            if src.startswith("/docs-assets/"):
                asset = client.get(src)
                assert asset.status_code == 200 and len(asset.content) > 1000, src


def test_openapi_declares_bearer_and_api_key_schemes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>`",
    }
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    get_subjects = spec["paths"]["/v1/subjects"]["get"]
    assert {"bearer": []} in get_subjects["security"]
    assert {"apiKey": []} in get_subjects["security"]


def test_both_headers_still_authenticate_and_nothing_is_a_401_problem(
    client: TestClient, keys: dict[Role, str]
) -> None:
    key = keys[Role.enroller]
    assert client.get("/v1/subjects", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/v1/subjects", headers={"authorization": f"bearer {key}"}).status_code == 200
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        r = client.get("/v1/subjects", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == "Bearer"


def test_profile_patch_refuses_unknown_fields_and_null_clears(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = auth(keys[Role.admin])
    r = client.patch("/v1/profile", json={"dpia_reff": "typo"}, headers=admin)
    assert r.status_code == 422 and "dpia_reff" in r.json()["detail"]
    before = client.get("/v1/profile", headers=admin).json()
    r = client.patch(
        "/v1/profile", json={"controller": "ACME, 1 Main St", "public_space": True}, headers=admin
    )
    assert r.json()["controller"] == "ACME, 1 Main St"
    r = client.patch("/v1/profile", json={"controller": None, "public_space": None}, headers=admin)
    assert r.status_code == 200
    after = r.json()
    assert after["controller"] is None and after["public_space"] is False
    assert after["dpia_ref"] == before["dpia_ref"]  # not sent: unchanged
    r = client.patch("/v1/profile", json={"controller": "X"}, headers=admin)
    assert (
        client.patch("/v1/profile", json={"controller": ""}, headers=admin).json()["controller"]
        == client.patch("/v1/profile", json={"controller": None}, headers=admin).json()[
            "controller"
        ]
    )


def _subject(client: TestClient, keys: dict[Role, str]) -> str:
    r = client.post("/v1/subjects", json=SUBJECT, headers=auth(keys[Role.enroller]))
    assert r.status_code == 201
    sid: str = r.json()["id"]
    return sid


def test_enrolment_with_every_photo_rejected_is_a_422_with_each_reason(
    client: TestClient, keys: dict[Role, str], data: Path
) -> None:
    sid = _subject(client, keys)
    files = [
        ("image", ("scene.jpg", image(data, "scenes/two_people.jpg"), "image/jpeg")),
        ("image", ("notes.txt", b"not an image at all", "text/plain")),
    ]
    r = client.post(f"/v1/subjects/{sid}/templates", files=files, headers=auth(keys[Role.enroller]))
    assert r.status_code == 422
    body = r.json()
    assert [x["code"] for x in body["rejected"]] == ["several_faces", "unreadable"]
    assert [x["image"] for x in body["rejected"]] == ["upload #1", "upload #2"]
    assert "upload #1" in body["detail"] and "upload #2" in body["detail"]
    detail = client.get(f"/v1/subjects/{sid}", headers=auth(keys[Role.enroller])).json()
    assert detail["templates"] == 0


def test_several_photos_in_one_request_are_all_enrolled(
    client: TestClient, keys: dict[Role, str], data: Path
) -> None:
    sid = _subject(client, keys)
    files = [
        ("image", (f"{n}.jpg", image(data, f"people/joe_biden/{n}.jpg"), "image/jpeg"))
        for n in (1, 2)
    ] + [("image", ("scene.jpg", image(data, "scenes/two_people.jpg"), "image/jpeg"))]
    r = client.post(f"/v1/subjects/{sid}/templates", files=files, headers=auth(keys[Role.enroller]))
    assert r.status_code == 200, r.text
    report = r.json()
    assert len(report["enrolled"]) == 2
    assert [x["code"] for x in report["rejected"]] == ["several_faces"]
    detail = client.get(f"/v1/subjects/{sid}", headers=auth(keys[Role.enroller])).json()
    assert detail["templates"] == 2
    # the raw body still carries one photo
    raw = client.post(
        f"/v1/subjects/{sid}/templates",
        content=image(data, "people/joe_biden/1.jpg"),
        headers={**auth(keys[Role.enroller]), "Content-Type": "image/jpeg"},
    )
    assert raw.status_code == 200 and len(raw.json()["enrolled"]) == 1


def test_a_consent_already_expired_is_refused_at_creation(
    client: TestClient, keys: dict[Role, str]
) -> None:
    enroller = auth(keys[Role.enroller])
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    expired = {**SUBJECT, "consent": {**SUBJECT["consent"], "expires_on": yesterday}}
    before = len(client.get("/v1/subjects", headers=enroller).json())
    r = client.post("/v1/subjects", json=expired, headers=enroller)
    assert r.status_code == 422 and "expired" in r.json()["detail"]
    assert len(client.get("/v1/subjects", headers=enroller).json()) == before
    sid = _subject(client, keys)
    r = client.post(
        f"/v1/subjects/{sid}/consents",
        json={"reference": "F-15", "purposes": ["door"], "expires_on": yesterday},
        headers=enroller,
    )
    assert r.status_code == 422
    today = datetime.now(UTC).date().isoformat()
    ok = client.post(
        f"/v1/subjects/{sid}/consents",
        json={"reference": "F-16", "purposes": ["door"], "expires_on": today},
        headers=enroller,
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("count", [9])
def test_too_many_photos_in_one_request_is_a_clear_error(
    client: TestClient, keys: dict[Role, str], data: Path, count: int
) -> None:
    sid = _subject(client, keys)
    photo = image(data, "people/joe_biden/1.jpg")
    files = [("image", (f"{n}.jpg", photo, "image/jpeg")) for n in range(count)]
    r = client.post(f"/v1/subjects/{sid}/templates", files=files, headers=auth(keys[Role.enroller]))
    assert r.status_code == 422 and "parts" in r.json()["detail"]
