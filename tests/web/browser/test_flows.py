"""The console's flows end to end in Chromium (issue 13, "Tested in a real browser"): people
sign in through the form, find controls by their labels and roles, and the tests check what
the page shows and what the use-cases recorded (audit entries with actor ``user:<name>``)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import httpx
import numpy as np
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from tests.web.browser.conftest import (
    KNOWN,
    WATCHED,
    WATCHER,
    Console,
    Opener,
    shot,
    sign_in,
)
from tests.web.conftest import PASSWORD, PURPOSE, WATCHLIST
from visage.governance.access import Role
from visage.governance.audit_ops import AuditOp
from visage.store.schema import AuditEntryRow
from visage.usecases import halt as halt_uc
from visage.usecases.faces import detect
from visage.usecases.keys import create_key
from visage.usecases.profile import get_profile

SCENE = "scenes/obama_and_biden.jpg"

AsUser = Callable[..., Page]

ADMIN_NAV = ("Overview", "Events", "Cameras", "Audit", "Reports", "Admin")
NOT_ADMIN = ("Subjects", "Identify", "Reviews")
"""What an admin's navigation shows and hides (the role matrix: no enrolment, no search)."""


def operations_by(console: Console, actor: str) -> list[str]:
    """The audit log's operations recorded for ``actor``, oldest first."""
    with console.core.store.session() as session:
        rows = session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.actor == actor).order_by(AuditEntryRow.seq)
        ).all()
        return [r.operation for r in rows]


def nav_link(page: Page, name: str) -> Locator:
    """A link of the main navigation, by its accessible name."""
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


# --- admin -------------------------------------------------------------------------------


def test_admin_signs_in_sets_the_profile_and_creates_a_user(
    console: Console, open_page: Opener
) -> None:
    page = open_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.get_by_label("Username", exact=True).fill("ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    shot(page, "01-sign-in.png")
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    for name in ADMIN_NAV:
        expect(nav_link(page, name)).to_be_visible()
    for name in NOT_ADMIN:
        expect(nav_link(page, name)).to_have_count(0)
    shot(page, "02-overview.png")

    # The profile: everything else stays as it was (the form shows every field, filled in).
    nav_link(page, "Admin").click()
    expect(page.get_by_role("heading", name="Admin", level=1)).to_be_visible()
    page.get_by_label("Data controller", exact=True).fill("Ville de Démo, service sécurité")
    page.get_by_label("Data protection officer's contact").fill("dpo@example.org")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status").first).to_be_visible()
    assert get_profile(console.core).controller == "Ville de Démo, service sécurité"
    assert get_profile(console.core).watchlist_purposes == [WATCHLIST]  # kept
    nav_link(page, "Overview").click()
    expect(page.get_by_text("Ville de Démo, service sécurité")).to_be_visible()

    # A new user with a one-time password, shown once.
    nav_link(page, "Admin").click()
    add = page.locator("form", has=page.get_by_role("heading", name="Add user"))
    add.get_by_label("Name", exact=True).fill("nina")
    add.get_by_label("Role", exact=True).select_option("enroller")
    add.get_by_role("button", name="Add user").click()
    shown = page.locator("#shown-once")
    expect(shown).to_contain_text("nina")
    one_time = shown.locator("code").inner_text().strip()
    assert len(one_time) >= 12
    expect(page.get_by_role("row", name=re.compile(r"^nina\b"))).to_be_visible()
    shot(page, "09-admin.png")

    # nina signs in with it and must choose her own password before anything else.
    nina = sign_in(open_page(), "nina", one_time)
    expect(nina).to_have_url(re.compile(r"/password$"))
    nina.get_by_label("Current password").fill(one_time)
    nina.get_by_label("New password (at least 12 characters)").fill("nina's own long passphrase")
    nina.get_by_label("New password again").fill("nina's own long passphrase")
    nina.get_by_role("button", name="Change password").click()
    expect(nina.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(nav_link(nina, "Subjects")).to_be_visible()
    expect(nav_link(nina, "Admin")).to_have_count(0)

    done = operations_by(console, "user:ada")
    assert AuditOp.profile_set in done and AuditOp.user_create in done, done


# --- enroller ----------------------------------------------------------------------------


def test_enroller_adds_a_subject_with_consent_and_enrols_three_photos(
    console: Console, as_user: AsUser
) -> None:
    page = as_user("enzo")
    nav_link(page, "Subjects").click()
    expect(page.get_by_role("heading", name="Subjects", level=1)).to_be_visible()
    page.get_by_role("link", name="Add subject").click()
    page.get_by_label("Name", exact=True).fill("Kit Harington")
    page.get_by_label("Consent reference").fill("FORM-2026-117")
    page.get_by_label("Purposes").fill(PURPOSE)
    page.get_by_label("Expires").fill("2027-11-30")
    page.get_by_role("button", name="Add subject").click()

    expect(page.get_by_role("heading", name="Kit Harington", level=1)).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("FORM-2026-117"))).to_contain_text("Valid")

    kit = console.data / "people/kit_harington"
    page.get_by_label("Photos").set_input_files(
        [kit / "1.jpg", kit / "2.jpg", console.data / "scenes/two_people.jpg"]
    )
    page.get_by_role("button", name="Enrol", exact=True).click()
    report = page.locator("#enrol-report")
    expect(report).to_contain_text("2 of 3 photos enrolled.")
    for name in ("1.jpg", "2.jpg"):
        expect(report.get_by_role("row", name=re.compile(re.escape(name)))).to_contain_text(
            "Enrolled"
        )
    rejected = report.get_by_role("row", name=re.compile("two_people.jpg"))
    expect(rejected).to_contain_text("Rejected")
    expect(rejected).to_contain_text(re.compile(r"several faces|more than one face", re.I))
    expect(page.locator("#templates img")).to_have_count(2)
    shot(page, "03-subject-enrol.png")

    done = operations_by(console, "user:enzo")
    assert AuditOp.subject_create in done and AuditOp.enroll in done, done


# --- operator ----------------------------------------------------------------------------


def _decoded(data_url: str) -> np.ndarray:
    head, _, body = data_url.partition(",")
    assert head.startswith("data:image/"), head[:40]
    image = cv2.imdecode(np.frombuffer(base64.b64decode(body), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None, "the shown picture is not an image"
    return image


def _sharpness(gray: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Laplacian variance of the inner part of ``box`` (the outline drawn around a match is
    left out): a blurred or masked face has almost none."""
    left, top, right, bottom = box
    dx, dy = (right - left) // 5, (bottom - top) // 5
    region = gray[top + dy : bottom - dy, left + dx : right - dx]
    return float(cv2.Laplacian(region, cv2.CV_64F).var())


def test_operator_identifies_a_scene_and_the_bystander_is_masked(
    console: Console, as_user: AsUser
) -> None:
    faces = [tuple(f.box) for f in detect(console.core, console.data / SCENE).faces]
    assert len(faces) >= 2, faces
    page = as_user("olga")
    nav_link(page, "Identify").click()
    expect(page.get_by_role("heading", name="Identify / Verify", level=1)).to_be_visible()
    form = page.locator("form", has=page.get_by_role("button", name="Identify", exact=True))
    form.get_by_label("Purpose").select_option(PURPOSE)
    form.get_by_label("Image").set_input_files(console.data / SCENE)
    form.get_by_role("button", name="Identify", exact=True).click()

    summary = page.get_by_role("status").filter(has_text="Faces found")
    expect(summary).to_contain_text(f"Faces found: {len(faces)}. Matches: 1.")
    expect(summary).to_contain_text(f"{len(faces) - 1} other faces masked.")
    labelled = page.get_by_role("table", name="Labelled faces")
    expect(labelled).to_contain_text(KNOWN)
    expect(page.locator("body")).not_to_contain_text(WATCHED)  # a bystander stays nameless
    shot(page, "04-identify-masked.png", top=page.get_by_role("heading", name="Result"))

    # The picture shown: the match is about as sharp as in the original, every bystander's
    # face has lost its detail.
    shown = _decoded(page.locator("img.annotated").get_attribute("src") or "")
    original = cv2.imread(str(console.data / SCENE), cv2.IMREAD_GRAYSCALE)
    assert original is not None
    scale = shown.shape[1] / original.shape[1]
    resized = cv2.resize(original, (shown.shape[1], shown.shape[0]), interpolation=cv2.INTER_AREA)
    ratios = []
    for face in faces:
        box = (
            round(face[0] * scale),
            round(face[1] * scale),
            round(face[2] * scale),
            round(face[3] * scale),
        )
        ratios.append(_sharpness(shown, box) / _sharpness(resized, box))
    ratios.sort()
    assert all(r < 0.1 for r in ratios[:-1]), f"a bystander is not masked: sharpness {ratios}"
    assert ratios[-1] > 0.4, f"the match's face lost its detail: sharpness {ratios}"

    assert AuditOp.identify in operations_by(console, "user:olga")


# --- watchlist: two reviewers --------------------------------------------------------------


def _review_one(page: Page, reason: str) -> None:
    """Answer blind ("Same person"), then confirm with a reason."""
    nav_link(page, "Reviews").click()
    expect(page.get_by_role("heading", name="Same person?")).to_be_visible()
    assert WATCHED not in page.content(), "the name shows before the blind answer"
    page.get_by_role("button", name="Same person", exact=True).click()
    expect(page.get_by_text(WATCHED)).to_be_visible()  # now the name and the score
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_text("Your decision was recorded.")).to_be_visible()


def test_watchlist_identity_released_only_after_two_reviewers_confirm(
    console: Console, as_user: AsUser
) -> None:
    operator = as_user(WATCHER)
    nav_link(operator, "Identify").click()
    form = operator.locator("form", has=operator.get_by_role("button", name="Identify", exact=True))
    form.get_by_label("Purpose").select_option(WATCHLIST)
    form.get_by_label("Image").set_input_files(console.data / SCENE)
    form.get_by_role("button", name="Identify", exact=True).click()
    labelled = operator.get_by_role("table", name="Labelled faces")
    expect(labelled).to_contain_text("Pending review")
    expect(operator.locator("body")).not_to_contain_text(WATCHED)
    operator.get_by_role("link", name=re.compile("Check the outcome of review")).click()
    outcome_url = operator.url
    expect(operator.get_by_text("Awaiting two reviewers")).to_be_visible()

    rita, remy = as_user("rita"), as_user("remy")
    nav_link(rita, "Reviews").click()
    expect(rita.get_by_role("heading", name="Same person?")).to_be_visible()
    expect(rita.get_by_role("img", name="Face from the search (probe)")).to_be_visible()
    shot(rita, "05-review-blind.png")
    _review_one(rita, "Same nose, ears and hairline in both faces.")

    operator.goto(outcome_url)  # one confirmation releases nothing
    expect(operator.get_by_text("Awaiting two reviewers")).to_be_visible()
    expect(operator.locator("body")).not_to_contain_text(WATCHED)

    _review_one(remy, "Same face shape and eyebrows; the probe is sharp.")
    operator.goto(outcome_url)
    expect(operator.get_by_text("Confirmed by two reviewers")).to_be_visible()
    expect(operator.get_by_role("status")).to_contain_text(f"Name: {WATCHED}.")

    assert AuditOp.review_confirm in operations_by(console, "user:rita")
    assert AuditOp.review_confirm in operations_by(console, "user:remy")


# --- Stop --------------------------------------------------------------------------------


def test_admin_stops_identify_in_the_page_and_the_api_then_resumes(
    console: Console, as_user: AsUser
) -> None:
    key = create_key(console.core, Role.operator, [PURPOSE], "browser-test")
    scene = (console.data / SCENE).read_bytes()

    def api_identify() -> httpx.Response:
        return httpx.post(
            f"{console.url}/v1/identify",
            params={"purpose": PURPOSE},
            headers={"X-API-Key": key.key},
            files={"image": ("scene.jpg", scene, "image/jpeg")},
            timeout=60,
        )

    admin = as_user("ada")
    admin.on("dialog", lambda dialog: dialog.accept())
    try:
        admin.get_by_label("Reason").fill("Drill: camera footage reported misused")
        admin.get_by_role("button", name="Stop all 1:N processing").click()
        expect(admin.get_by_role("status").first).to_contain_text("stopped")
        expect(admin.get_by_role("table", name="Halts in place")).to_contain_text("user:ada")
        shot(admin, "06-stop.png")

        operator = as_user("olga")
        nav_link(operator, "Identify").click()
        form = operator.locator(
            "form", has=operator.get_by_role("button", name="Identify", exact=True)
        )
        form.get_by_label("Image").set_input_files(console.data / SCENE)
        with operator.expect_response(lambda r: r.request.method == "POST") as answer:
            form.get_by_role("button", name="Identify", exact=True).click()
        assert answer.value.status == 423
        expect(operator.get_by_role("alert")).to_contain_text(re.compile("halted", re.I))
        expect(operator.locator("img.annotated")).to_have_count(0)

        refused = api_identify()
        assert refused.status_code == 423, refused.text
        assert "halt" in refused.json()["title"].lower()

        admin.goto("/")
        admin.get_by_role("button", name=re.compile(r"^Resume")).click()
        expect(admin.get_by_text("Nothing is halted.")).to_be_visible()
    finally:
        for h in halt_uc.list_halts(console.core):  # never leave the module halted
            halt_uc.resume(console.core, h.scope)

    assert api_identify().status_code == 200
    done = operations_by(console, "user:ada")
    assert AuditOp.halt in done and AuditOp.resume in done, done


# --- auditor -----------------------------------------------------------------------------


def test_auditor_verifies_the_chain_and_exports_it(
    console: Console, as_user: AsUser, tmp_path: Path
) -> None:
    page = as_user("aude")
    nav_link(page, "Audit").click()
    expect(page.get_by_role("heading", name="Audit", level=1)).to_be_visible()
    page.get_by_role("button", name="Verify now").click()
    expect(page.get_by_role("status").filter(has_text="chain")).to_contain_text(
        "The audit chain is intact"
    )
    shot(page, "07-audit.png")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSONL").click()
    saved = tmp_path / "audit.jsonl"
    download.value.save_as(saved)
    lines = [json.loads(line) for line in saved.read_text().splitlines() if line.strip()]
    assert len(lines) > 10
    actors = {line.get("actor") for line in lines}
    assert {"user:ada", "user:aude"} <= actors, actors


# --- French ------------------------------------------------------------------------------


def test_the_subject_page_in_french(console: Console, as_user: AsUser) -> None:
    page = as_user("enzo", locale="fr-FR")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.locator("header nav").get_by_role("link", name="Personnes", exact=True).click()
    page.get_by_role("link", name=KNOWN).click()
    expect(page.get_by_role("heading", name=KNOWN, level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Enregistrements de consentement")).to_be_visible()
    expect(page.get_by_role("heading", name="Gabarits", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Enrôler", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Add consent")).to_have_count(0)
    shot(page, "08-subject-fr.png")
