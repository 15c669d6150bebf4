"""The public pages in Chromium (issue 17): no sign-in, axe-core with no serious or critical
violation on each page in English and French, the Stop banner visible on a camera's notice,
no script on any of them, and screenshots for the README (``docs/screenshots/public-*``)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.browser.conftest import Console, Opener, shot
from tests.web.browser.test_accessibility import describe, violations
from tests.web.conftest import PURPOSE
from visage.governance.audit import Actor
from visage.usecases import audit_log, cameras
from visage.usecases import halt as halt_uc
from visage.usecases.identify import identify

CAMERA = "hall-east"
PAGES = {
    "/public/": "public-notice.png",
    f"/public/cameras/{CAMERA}": "public-camera.png",
    "/public/transparency": "public-transparency.png",
    "/public/audit-head": "public-audit-head.png",
}


@pytest.fixture(scope="module")
def public(console: Console) -> Console:
    """A camera, a few searches to count, and a signed head."""
    cameras.add_camera(console.core, CAMERA, "rtsp://cam.local/hall", PURPOSE, True, None)
    for _ in range(2):
        identify(console.core, console.data / "scenes/obama_and_biden.jpg", PURPOSE)
    audit_log.checkpoint(console.core)
    return console


@pytest.mark.parametrize("locale", ["en-GB", "fr-FR"])
def test_public_pages_pass_axe_without_sign_in(
    public: Console, open_page: Opener, locale: str
) -> None:
    page = open_page(locale)
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    for path, name in PAGES.items():
        page.goto(path)
        assert "/sign-in" not in page.url, f"{path} asked to sign in"
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        found = violations(page)
        assert not found, f"{path} ({locale}):\n{describe(found)}"
        if locale == "en-GB":
            shot(page, name)
    assert scripts == [], f"the public pages loaded scripts: {scripts}"


def test_camera_notice_shows_the_stop_at_the_next_load(public: Console, open_page: Opener) -> None:
    page = open_page()
    page.goto(f"/public/cameras/{CAMERA}")
    expect(page.get_by_text("No: stopped")).to_have_count(0)
    halt_uc.halt(public.core, f"camera:{CAMERA}", "browser check", Actor.local())
    try:
        page.reload()
        expect(page.get_by_role("status")).to_contain_text(f"camera:{CAMERA}")
        expect(page.get_by_text("No: stopped")).to_be_visible()
        assert not violations(page)
        shot(page, "public-camera-stopped.png")
    finally:
        halt_uc.resume(public.core, f"camera:{CAMERA}", Actor.local())
