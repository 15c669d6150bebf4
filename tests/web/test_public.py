"""Public pages (issue 17): no sign-in, only configuration and aggregates.

A store populated the real way (people enrolled from photos, 1:N searches on a scene, a
watchlist match confirmed by two reviewers, a camera event) is served; every route under
``/public`` is walked and no name, subject id, consent reference, review or event id may
appear. The camera notice shows a Stop pressed through the API at the next request; the
pages keep working while all 1:N is halted; a client over its budget gets 429 with
Retry-After; answers carry a short public cache lifetime.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import make_app
from tests.web.test_page_matrix import _routes
from visage.core import Visage
from visage.governance.access import Principal, Role
from visage.governance.audit import Actor
from visage.governance.events import record_event
from visage.governance.review import BlindAnswer, Decision
from visage.store.schema import EventRow, ReviewRow
from visage.usecases import audit_log, cameras, public_info
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.keys import create_key
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.review import decide_with_reason
from visage.usecases.subjects import add_subject, make_consent
from visage.web.app import create_server
from visage.web.pages import public as public_page

PUBLIC_URL = "https://notice.example.org"
CAMERA = "gate-a"
PEOPLE = {
    "Barack Obama": ("AC-REF-OBAMA-7731", ["access-control"], "barack_obama", 2),
    "Joe Biden": ("WL-REF-BIDEN-4410", ["watchlist"], "joe_biden", 2),
}


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path
) -> Iterator[tuple[Visage, dict[str, list[str]]]]:
    """A populated data dir and the strings that must never appear publicly."""
    core = make_app(tmp_path_factory.mktemp("public"), models=shared_app, public_url=PUBLIC_URL)
    set_profile(
        core,
        ProfileChanges(
            controller="Ville de Lyon, 1 place de la Comédie",
            dpo_contact="dpo@lyon.example",
            watchlist_purposes=["watchlist"],
            jurisdiction="FR",
        ),
    )
    secrets: dict[str, list[str]] = {"names": [], "ids": [], "refs": []}
    for name, (ref, purposes, folder, photos) in PEOPLE.items():
        subject = add_subject(core, name, make_consent(ref, purposes)).id
        files = [data / f"people/{folder}/{i}.jpg" for i in range(1, photos + 1)]
        assert enroll(core, subject, files).enrolled
        secrets["names"].append(name)
        secrets["ids"].append(subject)
        secrets["refs"].append(ref)
    cameras.add_camera(core, CAMERA, "rtsp://cam.local/a", "access-control", True, None)
    scene = data / "scenes/obama_and_biden.jpg"
    found = identify(core, scene, "access-control")
    assert any(f.candidates for f in found.faces)
    watched = identify(core, scene, "watchlist")
    review_id = next(f.review_id for f in watched.faces if f.review_id)
    for reviewer in ("rita", "remy"):
        who = Principal(
            key_id=reviewer, role=Role.reviewer, purposes=(), owner=reviewer, kind="user"
        )
        decide_with_reason(core, review_id, who, Decision.confirm, "same face", BlindAnswer.same)
    with core.store.session() as session:
        record_event(
            session,
            subject_id=secrets["ids"][0],
            purpose="access-control",
            source="rtsp://cam.local/a",
            best_score=0.9,
            camera=CAMERA,
        )
    with core.store.session() as session:
        secrets["ids"] += [r.id for r in session.scalars(select(ReviewRow))]
        secrets["ids"] += [e.id for e in session.scalars(select(EventRow))]
    assert len(secrets["ids"]) >= 4  # two subjects, a review, its event, the camera event
    audit_log.checkpoint(core)
    yield core, secrets
    core.close()


@pytest.fixture(scope="module")
def client(world: tuple[Visage, dict[str, list[str]]]) -> Iterator[TestClient]:
    app = create_server(world[0], housekeeping=False, watch_cameras=False)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def public_urls(app: Any, core: Visage) -> list[str]:
    """Every GET route under /public, its parameters filled with every value they take."""
    assert isinstance(app, FastAPI)
    slugs = [c.slug for c in public_info.camera_notices(core)]
    fill: dict[str, list[str]] = {"slug": slugs, "chart": ["searches", "outcomes"]}
    urls: list[str] = []
    paths = sorted({p for m, p in _routes(app.routes) if m == "GET" and p.startswith("/public")})
    for path in paths:
        names = re.findall(r"\{(\w+)\}", path)
        assert all(n in fill for n in names), f"{path}: add its parameters to the leak test"
        variants = [path]
        for n in names:
            variants = [v.replace("{" + n + "}", value) for v in variants for value in fill[n]]
        urls += variants
    return urls


def test_no_public_route_leaks_a_person(
    client: TestClient, world: tuple[Visage, dict[str, list[str]]]
) -> None:
    core, secrets = world
    urls = public_urls(client.app, core)
    assert {"/public/", "/public/transparency", "/public/audit-head.json"} <= set(urls)
    assert f"/public/cameras/{CAMERA}" in urls
    forbidden = (
        secrets["names"] + secrets["refs"] + secrets["ids"] + [i[:12] for i in secrets["ids"]]
    )
    for lang in ("en", "fr"):
        for url in urls:
            response = client.get(url, headers={"Accept-Language": lang})
            assert response.status_code == 200, (url, response.status_code)
            kind = response.headers["content-type"]
            assert kind.split(";")[0] in {"text/html", "application/json", "image/svg+xml"}, url
            body = response.text
            lowered = body.lower()
            for secret in forbidden:
                assert secret.lower() not in lowered, f"{url} shows {secret!r}"
            assert "data:image" not in body and ".jpg" not in body, f"{url} carries an image"


def test_notice_tells_who_why_how_long_and_rights(client: TestClient) -> None:
    html = client.get("/public/").text
    assert "Ville de Lyon" in html and "dpo@lyon.example" in html
    assert "watchlist" in html and "access-control" in html
    assert "explicit-consent" in html
    assert "90 days" in html
    assert "CNIL" in html  # France: the authority named without configuration
    assert "Quote this reference" in html


def test_public_pages_in_french(client: TestClient) -> None:
    html = client.get("/public/cameras/gate-a", headers={"Accept-Language": "fr-FR"}).text
    assert 'lang="fr"' in html
    assert "Vos droits" in html and "Finalité" in html
    assert "Jamais conservés" in html


def test_camera_notice_shows_the_stop_pressed_through_the_api(
    client: TestClient, world: tuple[Visage, dict[str, list[str]]]
) -> None:
    core = world[0]
    admin = {"Authorization": f"Bearer {create_key(core, Role.admin, [], owner='ada').key}"}
    before = client.get(f"/public/cameras/{CAMERA}")
    assert "No: stopped" not in before.text
    reason = "Stopped after a wrong match reported by a visitor"
    halted = client.post(
        "/v1/halts", json={"scope": f"camera:{CAMERA}", "reason": reason}, headers=admin
    )
    assert halted.status_code in (200, 201), halted.text
    try:
        after = client.get(f"/public/cameras/{CAMERA}")
        assert "No: stopped" in after.text
        assert f"camera:{CAMERA}" in after.text
        assert reason not in after.text  # an admin's free text may name someone
        assert "ada" not in re.sub(r"<[^>]+>", " ", after.text).split()
        assert after.headers["Cache-Control"] == f"public, max-age={public_page.MAX_AGE_S}"
        assert public_page.MAX_AGE_S <= 30
    finally:
        assert client.delete(f"/v1/halts/camera:{CAMERA}", headers=admin).status_code == 200
    assert "No: stopped" not in client.get(f"/public/cameras/{CAMERA}").text


def test_pages_keep_working_while_all_recognition_is_halted(
    client: TestClient, world: tuple[Visage, dict[str, list[str]]]
) -> None:
    from visage.usecases import halt as halt_uc

    core = world[0]
    halt_uc.halt(core, "all", "drill", Actor.local())
    try:
        for url in public_urls(client.app, core):
            assert client.get(url).status_code == 200, url
        assert "Stopped" in client.get("/public/").text
    finally:
        halt_uc.resume(core, "all", Actor.local())


def test_transparency_counts_per_month_with_charts(client: TestClient) -> None:
    html = client.get("/public/transparency").text
    assert "<script" not in html
    assert 'src="/public/transparency/searches.svg"' in html
    month = re.search(r'<th scope="row">(\d{4}-\d{2})</th>', html)
    assert month is not None
    svg = client.get("/public/transparency/searches.svg")
    assert svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text
    assert "<script" not in svg.text
    assert re.search(r"<td>[1-9]\d*</td>", html), "no non-zero figure on the page"


def test_audit_head_json_matches_the_page_and_the_signed_checkpoint(
    client: TestClient, world: tuple[Visage, dict[str, list[str]]]
) -> None:
    core = world[0]
    body = client.get("/public/audit-head.json").json()
    newest = audit_log.chain_state(core).newest_checkpoint
    assert newest is not None and body["head"]["seq"] == newest.seq
    assert body["head"]["hash"] == newest.hash
    assert body["head"]["signature"] == newest.signature
    assert body["key_fingerprint"] == core.signer.fingerprint
    page = client.get("/public/audit-head").text
    assert newest.hash in page and core.signer.fingerprint in page


def test_saved_heads_witness_the_chain(
    client: TestClient, world: tuple[Visage, dict[str, list[str]]], tmp_path: Path
) -> None:
    core = world[0]
    saved = tmp_path / "heads.jsonl"
    lines = [client.get("/public/audit-head.json").text.strip()]
    add_subject(core, "Someone Else", make_consent("X-1", ["demo"]))
    audit_log.checkpoint(core)
    lines.append(client.get("/public/audit-head.json").text.strip())
    assert json.loads(lines[0])["head"]["seq"] < json.loads(lines[1])["head"]["seq"]
    saved.write_text("\n".join(lines) + "\n")
    result = public_info.check_saved_heads(core, public_info.read_saved_heads(saved))
    assert result.ok and result.matched == 2, result

    forged = json.loads(lines[1])
    forged["head"]["hash"] = "0" * 64
    saved.write_text(lines[0] + "\n" + json.dumps(forged) + "\n")
    bad = public_info.check_saved_heads(core, public_info.read_saved_heads(saved))
    assert not bad.ok and "not signed by the pinned key" in (bad.problem or "")

    ahead = json.loads(lines[1])["head"]
    ahead_seq = ahead["seq"] + 1000
    ahead["seq"] = ahead_seq
    saved.write_text(json.dumps(ahead) + "\n")
    assert not public_info.check_saved_heads(core, public_info.read_saved_heads(saved)).ok


def test_unknown_camera_is_a_404_page(client: TestClient) -> None:
    response = client.get("/public/cameras/no-such-camera")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_rate_limit_per_address_answers_429_with_retry_after(
    world: tuple[Visage, dict[str, list[str]]],
) -> None:
    app = create_server(world[0], housekeeping=False, watch_cameras=False)
    with TestClient(app, base_url="http://testserver") as c:
        answered = [c.get("/public/audit-head.json") for _ in range(public_page.PER_MINUTE * 2)]
        codes = [r.status_code for r in answered]
        assert set(codes) == {200, 429}, codes
        # the bucket refills at one a second while the loop runs: at least the burst passes
        assert codes.index(429) >= public_page.PER_MINUTE
        refused = answered[codes.index(429)]
        assert int(refused.headers["Retry-After"]) >= 1
        assert c.get("/healthz").status_code == 200  # the limit is the public pages' own
