"""Every route through the ASGI app with a real store: who may do what, purposes, gates."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import PURPOSE, auth, image
from visage.app import Visage
from visage.governance.access import Role
from visage.usecases.profile import set_profile

SUBJECT = {"name": "Joe", "consent": {"reference": "FORM-1", "purposes": [PURPOSE]}}

# route -> roles allowed; everyone else must get 403 (and no key 401).
MATRIX: list[tuple[str, str, set[Role]]] = [
    ("POST", "/v1/subjects", {Role.enroller}),
    ("GET", "/v1/subjects", {Role.enroller}),
    ("GET", "/v1/subjects/{sid}", {Role.enroller}),
    ("PATCH", "/v1/subjects/{sid}", {Role.enroller}),
    ("POST", "/v1/subjects/{sid}/consents", {Role.enroller}),
    ("POST", "/v1/subjects/{sid}/templates", {Role.enroller}),
    ("GET", "/v1/subjects/{sid}/templates", {Role.enroller}),
    ("DELETE", "/v1/subjects/{sid}/templates/{tid}", {Role.enroller}),
    ("DELETE", "/v1/subjects/{sid}", {Role.enroller}),
    ("POST", "/v1/identify?purpose=" + PURPOSE, {Role.operator}),
    ("POST", "/v1/verify?purpose=" + PURPOSE, {Role.operator}),
    ("POST", "/v1/detect", {Role.operator}),
    ("POST", "/v1/keys", {Role.admin}),
    ("GET", "/v1/keys", {Role.admin}),
    ("DELETE", "/v1/keys/{kid}", {Role.admin}),
    ("GET", "/v1/profile", {Role.admin}),
    ("PATCH", "/v1/profile", {Role.admin}),
    ("POST", "/v1/subjects/{sid}/consents/FORM-1/withdraw", {Role.enroller}),
    ("GET", "/v1/subjects/{sid}/export", {Role.enroller}),
    ("GET", "/v1/audit", {Role.auditor, Role.admin}),
    ("GET", "/v1/audit/verify", {Role.auditor, Role.admin}),
    ("GET", "/v1/audit/public-key", {Role.auditor, Role.admin}),
    ("POST", "/v1/retention/run", {Role.admin}),
    ("GET", "/v1/reports/transparency", {Role.auditor, Role.admin}),
    ("GET", "/v1/reports/transparency?format=html", {Role.auditor, Role.admin}),
    ("GET", "/v1/reports/processing-record", {Role.auditor, Role.admin}),
    ("GET", "/v1/reports/dpia-pack", {Role.auditor, Role.admin}),
    ("GET", "/v1/reviews", {Role.reviewer}),
    ("GET", "/v1/reviews/history", {Role.auditor, Role.admin}),
    ("GET", "/v1/cameras", {Role.admin}),
    ("GET", "/v1/events", {Role.operator, Role.auditor, Role.admin}),
]


def _call(
    client: TestClient, method: str, path: str, key: str | None, data: Path, ids: dict[str, str]
):  # type: ignore[no-untyped-def]
    path = path.format(**ids)
    headers = auth(key) if key else {}
    kwargs: dict[str, object] = {}
    if (
        (path.endswith("/templates") and method == "POST")
        or "/identify" in path
        or path == "/v1/detect"
    ):
        kwargs["files"] = {"image": ("x.jpg", image(data), "image/jpeg")}
    elif "/verify" in path:
        kwargs["files"] = {
            "image_a": ("a.jpg", image(data), "image/jpeg"),
            "image_b": ("b.jpg", image(data, "people/joe_biden/2.jpg"), "image/jpeg"),
        }
    elif method == "POST" and path == "/v1/subjects":
        kwargs["json"] = SUBJECT
    elif path.endswith("/consents"):
        kwargs["json"] = SUBJECT["consent"]
    elif method == "POST" and path == "/v1/keys":
        kwargs["json"] = {"role": "auditor"}
    elif method == "PATCH" and path.startswith("/v1/subjects"):
        kwargs["json"] = {"name": "Joseph"}
    elif method == "PATCH":
        kwargs["json"] = {"dpia_ref": "DPIA-TEST-2026-01"}
    return client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX]
)
def test_role_matrix(
    client: TestClient,
    keys: dict[Role, str],
    data: Path,
    method: str,
    path: str,
    allowed: set[Role],
) -> None:
    # Fresh objects for each route, made by the roles that may make them.
    sid = client.post("/v1/subjects", json=SUBJECT, headers=auth(keys[Role.enroller])).json()["id"]
    tid = client.post(
        f"/v1/subjects/{sid}/templates",
        headers=auth(keys[Role.enroller]),
        files={"image": ("x.jpg", image(data), "image/jpeg")},
    ).json()["enrolled"][0]["template_id"]
    kid = client.post("/v1/keys", json={"role": "auditor"}, headers=auth(keys[Role.admin])).json()[
        "id"
    ]
    ids = {"sid": sid, "tid": tid, "kid": kid}
    assert _call(client, method, path, None, data, ids).status_code == 401
    for role in Role:
        r = _call(client, method, path, keys[role], data, ids)
        if role in allowed:
            assert r.status_code < 300, (role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"


def test_identify_end_to_end(client: TestClient, keys: dict[Role, str], data: Path) -> None:
    enroller, operator = auth(keys[Role.enroller]), auth(keys[Role.operator])
    sid = client.post(
        "/v1/subjects",
        headers=enroller,
        json={"name": "Barack", "consent": {"reference": "F-2", "purposes": [PURPOSE]}},
    ).json()["id"]
    r = client.post(
        f"/v1/subjects/{sid}/templates",
        headers=enroller,
        content=image(data, "people/barack_obama/1.jpg"),
    )  # raw body upload
    assert r.status_code == 200 and r.json()["enrolled"], r.text
    r = client.post(
        f"/v1/identify?purpose={PURPOSE}",
        headers=operator,
        files={"image": ("s.jpg", image(data, "scenes/two_people.jpg"))},
    )
    assert r.status_code == 200, r.text
    names = {c["name"] for f in r.json()["faces"] for c in f["candidates"]}
    assert "Barack" in names
    r = client.delete(f"/v1/subjects/{sid}", headers=enroller)
    assert r.status_code == 200 and r.json()["body"]["subject_id"] == sid
    r = client.post(
        f"/v1/identify?purpose={PURPOSE}",
        headers=operator,
        content=image(data, "scenes/two_people.jpg"),
    )
    assert "Barack" not in {c["name"] for f in r.json()["faces"] for c in f["candidates"]}


def test_purpose_binding(client: TestClient, keys: dict[Role, str], data: Path) -> None:
    r = client.post(
        "/v1/identify?purpose=marketing", headers=auth(keys[Role.operator]), content=image(data)
    )
    assert r.status_code == 403 and "marketing" in r.json()["detail"]
    r = client.post(
        "/v1/verify?purpose=marketing",
        headers=auth(keys[Role.operator]),
        files={"image_a": image(data), "image_b": image(data)},
    )
    assert r.status_code == 403


def test_profile_gate_and_verify_not_gated(
    client: TestClient, keys: dict[Role, str], api_core: Visage, data: Path
) -> None:
    operator = auth(keys[Role.operator])
    set_profile(api_core, dpia_ref="")
    try:
        r = client.post(f"/v1/identify?purpose={PURPOSE}", headers=operator, content=image(data))
        assert r.status_code == 403 and "DPIA" in r.json()["detail"]
        r = client.post(
            f"/v1/verify?purpose={PURPOSE}",
            headers=operator,
            files={"image_a": image(data), "image_b": image(data, "people/joe_biden/2.jpg")},
        )
        assert r.status_code == 200 and r.json()["same"] is True
    finally:
        set_profile(api_core, dpia_ref="DPIA-TEST-2026-01")


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 422), (b"not an image at all", 422), (b"\xff\xd8\xff\xe0" + b"\x00" * 50, 422)],
)
def test_bad_uploads_are_4xx_problems(
    client: TestClient, keys: dict[Role, str], body: bytes, status: int
) -> None:
    r = client.post("/v1/detect", headers=auth(keys[Role.operator]), content=body)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(r.json())


def test_revoked_key_stops_working(client: TestClient, keys: dict[Role, str]) -> None:
    admin = auth(keys[Role.admin])
    made = client.post(
        "/v1/keys", headers=admin, json={"role": "operator", "purposes": [PURPOSE]}
    ).json()
    assert (
        client.post("/v1/detect", headers={"X-API-Key": made["key"]}, content=b"x").status_code
        == 422
    )  # authenticated, bad image
    assert client.delete(f"/v1/keys/{made['id']}", headers=admin).status_code == 200
    assert (
        client.post("/v1/detect", headers={"X-API-Key": made["key"]}, content=b"x").status_code
        == 401
    )
    listed = client.get("/v1/keys", headers=admin).json()
    assert all("key" not in k for k in listed)


def test_operations(client: TestClient, keys: dict[Role, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics", headers=auth(keys[Role.auditor])).text
    assert "visage_requests_total" in metrics
    assert "Joe" not in metrics and "Barack" not in metrics
    assert client.get("/openapi.json").json()["info"]["title"] == "Visage"


def test_identify_is_rate_limited_per_key(
    api_core: Visage, keys: dict[Role, str], data: Path
) -> None:
    from visage.api.app import create_app

    with TestClient(create_app(api_core, identify_per_minute=2)) as limited:
        operator = auth(keys[Role.operator])
        codes = [
            limited.post(
                f"/v1/identify?purpose={PURPOSE}", headers=operator, content=b"not an image"
            ).status_code
            for _ in range(3)
        ]
        assert codes == [422, 422, 429]
        r = limited.post(f"/v1/identify?purpose={PURPOSE}", headers=operator, content=b"x")
        assert r.json()["type"].endswith("rate-limited")
        other = limited.post("/v1/detect", headers=operator, content=b"x")
        assert other.status_code == 422  # only identify is limited


def test_upload_size_limit(tmp_path: Path, shared_app: Visage, data: Path) -> None:
    from tests.conftest import make_app
    from visage.api.app import create_app
    from visage.usecases.keys import create_key

    small = make_app(tmp_path / "small", max_bytes=10_000)
    small._analyzer = shared_app.analyzer
    key = create_key(small, Role.operator, [PURPOSE]).key
    with TestClient(create_app(small)) as c:
        r = c.post("/v1/detect", headers=auth(key), content=image(data))
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        r = c.post("/v1/detect", headers=auth(key), files={"image": image(data)})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
    small.close()
