"""Identify / Verify screen: an operator uploads a real scene and gets back a picture with the
enrolled, consenting person labelled and every other face masked; watchlist searches stay
blind until two reviewers confirm; 1:1 verification; refusals as pages, never tracebacks."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import PASSWORD, PURPOSE, WATCHLIST, page_csrf, sign_in
from visage.api.deps import RateLimiter
from visage.core import Visage
from visage.governance import review as review_gov
from visage.governance.access import Principal, Role
from visage.governance.audit import Actor
from visage.usecases import audit_log, halt
from visage.usecases import identify as identify_uc
from visage.usecases import review as review_uc
from visage.usecases import users as users_uc
from visage.usecases.enroll import enroll
from visage.usecases.limits import DEFAULT_FMR, DEFAULT_FNMR, operating_point
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.subjects import add_subject, make_consent

SCENE = "scenes/two_people.jpg"
PICTURE = re.compile(r'src="data:image/jpeg;base64,([^"]+)"')
SCORE = re.compile(r"<td>(0\.9\d\d|1\.000)</td>")


@pytest.fixture(scope="module")
def enrolled(console_core: Visage, data: Path) -> Visage:
    """Joe Biden consents to access control and is on the watchlist; wanda is an operator
    for the watchlist."""
    set_profile(console_core, ProfileChanges(watchlist_purposes=[WATCHLIST]))
    consent = make_consent("form-biden", [PURPOSE, WATCHLIST])
    subject = add_subject(console_core, "Joe Biden", consent).id
    assert enroll(console_core, subject, [data / "people/joe_biden/1.jpg"]).enrolled
    users_uc.add_user(
        console_core,
        users_uc.NewUser(name="wanda", role=Role.operator, purposes=[WATCHLIST]),
        PASSWORD,
        Actor.local(),
    )
    return console_core


@pytest.fixture(scope="module")
def olga(server: TestClient, enrolled: Visage) -> Iterator[TestClient]:
    with TestClient(server.app, base_url="http://testserver") as client:
        yield sign_in(client, "olga")


@pytest.fixture(scope="module")
def wanda(server: TestClient, enrolled: Visage) -> Iterator[TestClient]:
    with TestClient(server.app, base_url="http://testserver") as client:
        yield sign_in(client, "wanda")


def post_identify(client: TestClient, purpose: str, image: bytes, csrf: str | None = None) -> str:
    response = client.post(
        "/identify",
        data={"purpose": purpose, "csrf": csrf or page_csrf(client, "/identify")},
        files={"image": ("scene.jpg", image, "image/jpeg")},
    )
    return f"{response.status_code}\n{response.text}"


def picture_of(html: str) -> np.ndarray:
    found = PICTURE.search(html)
    assert found, "no annotated picture in the page"
    jpeg = np.frombuffer(base64.b64decode(found.group(1)), np.uint8)
    pixels = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert pixels is not None
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))


def inner(pixels: np.ndarray, box: list[int]) -> np.ndarray:
    """The middle of a face box (away from outlines and labels), in grey."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
    grey = cv2.cvtColor(pixels[y0 + dy : y1 - dy, x0 + dx : x1 - dx], cv2.COLOR_RGB2GRAY)
    return np.asarray(grey, np.float64)


def sharpness(patch: np.ndarray) -> float:
    return float(cv2.Laplacian(patch, cv2.CV_64F).var())


@dataclass(frozen=True)
class Scene:
    original: np.ndarray
    boxes: list[list[int]]  # every face of the scene
    biden: list[int]


@pytest.fixture(scope="module")
def scene(enrolled: Visage, data: Path) -> Scene:
    """The scene's faces and which one is Joe Biden, from the use-case itself (one run)."""
    loaded = enrolled.load_image(data / SCENE)
    result = identify_uc.identify(enrolled, data / SCENE, PURPOSE)
    matched = [f.box for f in result.faces if f.candidates]
    assert len(result.faces) >= 2 and len(matched) == 1
    return Scene(loaded.pixels, [f.box for f in result.faces], matched[0])


@pytest.fixture(scope="module")
def identified(olga: TestClient, enrolled: Visage, data: Path) -> str:
    """The page olga gets for the scene (one model run shared by several tests)."""
    return post_identify(olga, PURPOSE, (data / SCENE).read_bytes())


def test_operator_gets_the_match_labelled_and_bystanders_masked(
    identified: str, scene: Scene
) -> None:
    status, _, html = identified.partition("\n")
    assert status == "200"
    assert "Joe Biden" in html
    assert SCORE.search(html), "the score is shown beside the name"
    others = len(scene.boxes) - 1
    assert ("1 other face masked." if others == 1 else f"{others} other faces masked.") in html
    shown = picture_of(html)
    assert shown.shape == scene.original.shape  # under the display limit: same pixels grid
    for box in scene.boxes:
        before, after = inner(scene.original, box), inner(shown, box)
        if box == scene.biden:  # kept as it was (JPEG aside)
            assert float(np.mean(np.abs(before - after))) < 8
            assert sharpness(after) > 0.5 * sharpness(before)
        else:  # masked: its detail is gone
            assert sharpness(after) < 0.1 * sharpness(before), box
            assert float(np.mean(np.abs(before - after))) > 5, box


def test_the_page_states_the_threshold_and_its_measured_error_rates(
    identified: str, enrolled: Visage
) -> None:
    html = identified.partition("\n")[2]
    point = operating_point(enrolled)
    assert (point.fmr, point.fnmr) == (DEFAULT_FMR, DEFAULT_FNMR)
    assert "at least 0.925" in html
    assert "0.0667 %" in html and "2.44 %" in html and "LFW subset" in html


def test_the_search_is_audited_with_the_console_user(identified: str, enrolled: Visage) -> None:
    assert identified.startswith("200")
    mine = [e for e in audit_log.entries(enrolled, operation="identify") if e.actor == "user:olga"]
    assert mine and mine[-1].purpose == PURPOSE and mine[-1].role == "operator"
    assert mine[-1].details["matches"] == 1 and mine[-1].details["bystanders"] >= 1


def test_watchlist_search_is_blind_until_two_reviewers_confirm(
    wanda: TestClient, olga: TestClient, enrolled: Visage, scene: Scene, data: Path
) -> None:
    status, _, html = post_identify(wanda, WATCHLIST, (data / SCENE).read_bytes()).partition("\n")
    assert status == "200"
    assert "Pending review" in html and "Joe Biden" not in html
    assert not SCORE.search(html), "no score before release"
    review_id = re.search(r'href="/identify/outcome/([^"]+)"', html)
    assert review_id
    rid = review_id.group(1)
    # The candidate's face stays masked too: nothing is released before the reviewers.
    shown = picture_of(html)
    assert sharpness(inner(shown, scene.biden)) < 0.1 * sharpness(
        inner(scene.original, scene.biden)
    )

    waiting = wanda.get(f"/identify/outcome/{rid}")
    assert waiting.status_code == 200
    assert "Awaiting two reviewers" in waiting.text and "Joe Biden" not in waiting.text
    assert olga.get(f"/identify/outcome/{rid}").status_code == 403  # not the one who asked

    for name in ("rita", "remy"):
        reviewer = Principal(key_id=name, role=Role.reviewer, purposes=(), owner=name, kind="user")
        review_uc.decide(enrolled, rid, reviewer, review_gov.Decision.confirm)
    released = wanda.get(f"/identify/outcome/{rid}")
    assert released.status_code == 200
    assert "Confirmed by two reviewers" in released.text and "Joe Biden" in released.text


def test_other_roles_may_not_use_the_screen(
    server: TestClient, enrolled: Visage, data: Path
) -> None:
    for name in ("enzo", "rita", "aude", "ada"):
        with TestClient(server.app, base_url="http://testserver") as client:
            sign_in(client, name)
            assert client.get("/identify").status_code == 403, name
            csrf = page_csrf(client, "/")
            response = client.post(
                "/identify",
                data={"purpose": PURPOSE, "csrf": csrf},
                files={"image": ("s.jpg", (data / SCENE).read_bytes(), "image/jpeg")},
            )
            assert response.status_code == 403, name


def test_a_purpose_not_on_the_account_is_refused(olga: TestClient, enrolled: Visage) -> None:
    before = len(audit_log.entries(enrolled, operation="identify"))
    status, _, html = post_identify(olga, WATCHLIST, b"not even read").partition("\n")
    assert status == "403"
    assert "may not be used for purpose" in html and "Traceback" not in html
    assert len(audit_log.entries(enrolled, operation="identify")) == before


def test_a_post_without_the_form_token_is_refused(olga: TestClient, data: Path) -> None:
    status = post_identify(olga, PURPOSE, (data / SCENE).read_bytes(), csrf="forged")
    assert status.startswith("403")


def test_a_corrupt_or_missing_upload_is_a_422_page(olga: TestClient) -> None:
    status, _, html = post_identify(olga, PURPOSE, b"\xff\xd8 not a jpeg at all").partition("\n")
    assert status == "422"
    assert "Unusable input" in html and 'role="alert"' in html and "Traceback" not in html
    csrf = page_csrf(olga, "/identify")
    empty = olga.post("/identify", data={"purpose": PURPOSE, "csrf": csrf})
    assert empty.status_code == 422 and "choose a file" in empty.text


def test_a_halt_is_shown_as_a_423_message(olga: TestClient, enrolled: Visage, data: Path) -> None:
    halt.halt(enrolled, f"purpose:{PURPOSE}", "incident under review", Actor.local())
    try:
        status, _, html = post_identify(olga, PURPOSE, (data / SCENE).read_bytes()).partition("\n")
    finally:
        halt.resume(enrolled, f"purpose:{PURPOSE}", Actor.local())
    assert status == "423"
    assert "1:N processing halted by an admin" in html and 'name="image"' in html


def test_a_law_enforcement_search_needs_its_authorisation_reference(
    server: TestClient, enrolled: Visage, data: Path
) -> None:
    users_uc.add_user(
        enrolled,
        users_uc.NewUser(name="lena", role=Role.operator, purposes=[PURPOSE]),
        PASSWORD,
        Actor.local(),
    )
    set_profile(enrolled, ProfileChanges(law_enforcement=True, public_space=True))
    try:
        with TestClient(server.app, base_url="http://testserver") as lena:
            sign_in(lena, "lena")
            assert '<label for="identify-reference">Authorisation reference</label>' in (
                lena.get("/identify").text
            )
            scene = (data / SCENE).read_bytes()
            status, _, html = post_identify(lena, PURPOSE, scene).partition("\n")
            assert status == "403" and "authorisation" in html
            response = lena.post(
                "/identify",
                data={
                    "purpose": PURPOSE,
                    "authorisation_ref": "WARRANT-2026-117",
                    "csrf": page_csrf(lena, "/identify"),
                },
                files={"image": ("scene.jpg", scene, "image/jpeg")},
            )
            assert response.status_code == 200 and "Joe Biden" in response.text
    finally:
        set_profile(enrolled, ProfileChanges(law_enforcement=False, public_space=False))
    searches = [
        e for e in audit_log.entries(enrolled, operation="identify") if e.actor == "user:lena"
    ]
    assert searches[-1].details["authorisation_ref"] == "WARRANT-2026-117"


def test_the_api_rate_ceiling_applies_to_the_console_too(
    server: TestClient, enrolled: Visage
) -> None:
    users_uc.add_user(
        enrolled,
        users_uc.NewUser(name="tess", role=Role.operator, purposes=[PURPOSE]),
        PASSWORD,
        Actor.local(),
    )
    limits = server.app.state.rate_limits  # type: ignore[attr-defined]
    shared = limits["identify"]
    limits["identify"] = RateLimiter(1, "identify")  # one search a minute, for this test
    try:
        with TestClient(server.app, base_url="http://testserver") as tess:
            sign_in(tess, "tess")
            limits["identify"].take("tess")  # the minute's search, spent (say, through the API)
            status, _, html = post_identify(tess, PURPOSE, b"never read").partition("\n")
    finally:
        limits["identify"] = shared
    assert status == "429"
    assert "Too many requests" in html and "slow down" in html and 'role="alert"' in html


def test_verify_same_and_different_people(olga: TestClient, data: Path) -> None:
    def verify(a: str, b: str) -> str:
        response = olga.post(
            "/identify/verify",
            data={"purpose": PURPOSE, "csrf": page_csrf(olga, "/identify")},
            files={
                "image_a": ("a.jpg", (data / a).read_bytes(), "image/jpeg"),
                "image_b": ("b.jpg", (data / b).read_bytes(), "image/jpeg"),
            },
        )
        assert response.status_code == 200, response.text
        return response.text

    # 250x250 LFW photos: the page's verdicts are the claim, and the 1-2 megapixel
    # portraits of people/ cost ~4x more to compare
    same = verify(
        "lfw10/Colin_Powell/Colin_Powell_0001.jpg", "lfw10/Colin_Powell/Colin_Powell_0002.jpg"
    )
    assert "Same person" in same and "against the threshold 0.925" in same
    different = verify(
        "lfw10/Colin_Powell/Colin_Powell_0001.jpg", "lfw10/George_W_Bush/George_W_Bush_0001.jpg"
    )
    assert "Not the same person" in different


def test_verify_without_a_face_is_a_422_message(olga: TestClient, data: Path) -> None:
    blank = cv2.imencode(".png", np.full((200, 200, 3), 200, np.uint8))[1].tobytes()
    response = olga.post(
        "/identify/verify",
        data={"purpose": PURPOSE, "csrf": page_csrf(olga, "/identify")},
        files={
            "image_a": ("a.png", blank, "image/png"),
            "image_b": ("b.jpg", (data / "people/joe_biden/2.jpg").read_bytes(), "image/jpeg"),
        },
    )
    assert response.status_code == 422
    assert "no face found in the first image" in response.text


def test_the_page_in_french(olga: TestClient) -> None:
    response = olga.get("/identify", headers={"Accept-Language": "fr"})
    assert response.status_code == 200
    html = response.text
    assert '<html lang="fr"' in html
    assert "<h1>Identifier / Vérifier</h1>" in html
    assert '<label for="verify-first">Première image</label>' in html
    assert ">Vérifier</button>" in html and "taux de fausses correspondances" in html
    assert "sous-ensemble de LFW" in html


def test_the_page_labels_every_control(olga: TestClient) -> None:
    html = olga.get("/identify").text
    for control, label in (
        ("identify-image", "Image"),
        ("verify-first", "First image"),
        ("verify-second", "Second image"),
    ):
        assert f'<label for="{control}">{label}</label>' in html
        assert f'id="{control}"' in html
    assert ">Identify</button>" in html and ">Verify</button>" in html
    assert html.count("<h1>") == 1 and " style=" not in html and "<script>" not in html
