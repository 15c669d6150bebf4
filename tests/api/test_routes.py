"""Every route through the ASGI app with a real store: who may do what, purposes, gates."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.api.conftest import PURPOSE, auth, image
from visage.core import Visage
from visage.governance.access import Role
from visage.usecases.profile import ProfileChanges, set_profile

SUBJECT_REF = "FORM-1"
SUBJECT = {"name": "Joe", "consent": {"reference": SUBJECT_REF, "purposes": [PURPOSE]}}

# route -> roles allowed; everyone else must get 403 (and no key 401). Every route of the
# app must be here (test_every_route_is_in_the_matrix): a new route needs a line.
MATRIX: list[tuple[str, str, set[Role]]] = [
    ("POST", "/v1/subjects", {Role.enroller}),
    ("GET", "/v1/subjects", {Role.enroller}),
    ("GET", "/v1/subjects/{sid}", {Role.enroller}),
    ("PATCH", "/v1/subjects/{sid}", {Role.enroller}),
    ("POST", "/v1/subjects/{sid}/consents", {Role.enroller}),
    ("POST", "/v1/subjects/{sid}/templates", {Role.enroller}),
    ("GET", "/v1/subjects/{sid}/templates", {Role.enroller}),
    ("DELETE", "/v1/subjects/{sid}/templates/{tid}", {Role.enroller}),
    ("GET", "/v1/subjects/{sid}/templates/{tid}/reference", {Role.enroller, Role.reviewer}),
    ("DELETE", "/v1/subjects/{sid}", {Role.enroller}),
    ("POST", "/v1/identify?purpose=" + PURPOSE, {Role.operator}),
    ("POST", "/v1/verify?purpose=" + PURPOSE, {Role.operator}),
    ("POST", "/v1/detect", {Role.operator}),
    ("POST", "/v1/keys", {Role.admin}),
    ("GET", "/v1/keys", {Role.admin}),
    ("DELETE", "/v1/keys/{kid}", {Role.admin}),
    ("GET", "/v1/profile", {Role.admin}),
    ("PATCH", "/v1/profile", {Role.admin}),
    ("POST", "/v1/subjects/{sid}/consents/{ref}/withdraw", {Role.enroller}),
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
    ("GET", "/v1/erasures/{erased}", {Role.auditor, Role.admin}),
    ("GET", "/v1/reviews/{missing}", {Role.reviewer}),
    ("GET", "/v1/reviews/{missing}/probe", {Role.reviewer}),
    ("GET", "/v1/reviews/{missing}/outcome", set(Role)),
    ("POST", "/v1/reviews/{missing}/confirm", {Role.reviewer}),
    ("POST", "/v1/reviews/{missing}/reject", {Role.reviewer}),
    ("GET", "/v1/cameras", {Role.admin}),
    ("POST", "/v1/cameras", {Role.admin}),
    ("PATCH", "/v1/cameras/{cid}", {Role.admin}),
    ("DELETE", "/v1/cameras/{cid}", {Role.admin}),
    ("GET", "/v1/events", {Role.operator, Role.auditor, Role.admin}),
    ("GET", "/v1/halts", {Role.admin}),
    ("POST", "/v1/halts", {Role.admin}),
    ("DELETE", "/v1/halts/{halt}", {Role.admin}),
    ("GET", "/metrics", {Role.auditor, Role.admin}),
]

# Routes anyone may call, without a key.
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/docs"), ("GET", "/redoc")}

# An id of an item that does not exist: the roles the policy lets through get 404 (the
# review use-cases, tested in tests/security/test_review_blind.py, answer), the others 403.
MISSING = "0" * 32


def _route_key(method: str, path: str) -> tuple[str, str]:
    """``("GET", "/v1/subjects/{}")`` for both ``/v1/subjects/{sid}?x=1`` and the app's
    ``/v1/subjects/{subject_id}``."""
    return method, re.sub(r"\{[^}]*\}", "{}", path.split("?")[0])


def _app_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, also inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            for method in route.methods:
                yield method, prefix + route.path
        elif (inner := getattr(route, "original_router", None)) is not None:
            context = getattr(route, "include_context", None)
            yield from _app_routes(inner.routes, prefix + getattr(context, "prefix", ""))


def _all_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = {_route_key(m, p) for m, p in _app_routes(app.routes)}
    documented = {
        _route_key(method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
    }
    assert documented <= found, documented - found  # the walk itself misses nothing
    return found


def test_every_route_is_in_the_matrix(client: TestClient) -> None:
    assert isinstance(client.app, FastAPI)
    routes = _all_routes(client.app)
    matrix = {_route_key(m, p) for m, p, _ in MATRIX}
    public = {_route_key(m, p) for m, p in PUBLIC}
    assert routes - matrix - public == set(), "routes without a line in MATRIX or PUBLIC"
    assert (matrix | public) - routes == set(), "MATRIX lines for routes that do not exist"


def test_public_routes_need_no_key(client: TestClient) -> None:
    for method, path in PUBLIC:
        assert client.request(method, path).status_code == 200


class _Ids(dict[str, str]):
    """Path ids made on first use, by the roles that may make them."""

    def __init__(self, client: TestClient, keys: dict[Role, str], data: Path) -> None:
        super().__init__(missing=MISSING, ref=SUBJECT_REF)
        self.client, self.keys, self.data = client, keys, data

    def __missing__(self, name: str) -> str:
        c, enroller, admin = (
            self.client,
            auth(self.keys[Role.enroller]),
            auth(self.keys[Role.admin]),
        )
        if name in ("sid", "erased"):
            value = c.post("/v1/subjects", json=SUBJECT, headers=enroller).json()["id"]
            if name == "erased":
                assert c.delete(f"/v1/subjects/{value}", headers=enroller).status_code == 200
        elif name == "tid":
            value = c.post(
                f"/v1/subjects/{self['sid']}/templates",
                headers=enroller,
                files={"image": ("x.jpg", image(self.data), "image/jpeg")},
            ).json()["enrolled"][0]["template_id"]
        elif name == "kid":
            value = c.post("/v1/keys", json={"role": "auditor"}, headers=admin).json()["id"]
        elif name == "cid":
            value = c.post("/v1/cameras", json=_camera(), headers=admin).json()["id"]
        elif name == "halt":  # a camera's halt: identify in the other tests is not halted
            value = c.post("/v1/halts", json=_HALT, headers=admin).json()["scope"]
        else:
            raise KeyError(name)
        self[name] = value
        return value


_HALT = {"scope": "camera:role-matrix", "reason": "role matrix"}


def _camera() -> dict[str, object]:
    return {
        "name": f"cam-{uuid.uuid4().hex[:8]}",
        "source": "/dev/video9",
        "purpose": PURPOSE,
        "enabled": False,
    }


def _call(
    client: TestClient, method: str, path: str, key: str | None, data: Path, ids: dict[str, str]
):  # type: ignore[no-untyped-def]
    path = path.format_map(ids)
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
    elif method == "POST" and path == "/v1/cameras":
        kwargs["json"] = _camera()
    elif method == "POST" and path == "/v1/halts":
        kwargs["json"] = _HALT
    elif method == "PATCH" and path.startswith("/v1/cameras"):
        kwargs["json"] = {"enabled": False}
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
    ids = _Ids(client, keys, data)  # fresh objects for each route
    assert _call(client, method, path, None, data, ids).status_code == 401
    for role in Role:
        r = _call(client, method, path, keys[role], data, ids)
        if role in allowed and "{missing}" in path:
            assert r.status_code == 404, (role, r.status_code, r.text)
        elif role in allowed:
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
    set_profile(api_core, ProfileChanges(dpia_ref=""))
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
        set_profile(api_core, ProfileChanges(dpia_ref="DPIA-TEST-2026-01"))


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

    small = make_app(tmp_path / "small", max_bytes=10_000, models=shared_app)
    key = create_key(small, Role.operator, [PURPOSE]).key
    with TestClient(create_app(small)) as c:
        r = c.post("/v1/detect", headers=auth(key), content=image(data))
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        r = c.post("/v1/detect", headers=auth(key), files={"image": image(data)})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
    small.close()


def test_text_with_a_nul_character_is_bad_input_on_every_store(
    client: TestClient, keys: dict[Role, str]
) -> None:
    """A NUL character in any text stored as text (PostgreSQL cannot store one: it was a 500
    there, found by schemathesis) is an input error at the store, whichever route it came
    through. (Names of people are sealed: stored as ciphertext, never as text.)"""
    admin = auth(keys[Role.admin])
    r = client.post("/v1/keys", headers=admin, json={"role": "admin", "name": "\u0000"})
    assert r.status_code in (400, 422) and "NUL" in r.json()["detail"], r.text
    r = client.post("/v1/keys", headers=admin, json={"role": "auditor", "owner": "A\u0000n"})
    assert r.status_code in (400, 422) and "NUL" in r.json()["detail"], r.text
    listed = client.get("/v1/keys", headers=admin).json()
    assert all("\u0000" not in (k.get("name") or "") for k in listed)
