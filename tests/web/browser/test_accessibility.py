"""Accessibility in Chromium: axe-core on every console page (no serious or critical
violation), and the console driven with the keyboard alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page, expect

from tests.web.browser.conftest import FRENCH, KNOWN, WATCHER, Console, Opener, sign_in
from tests.web.conftest import PASSWORD, WATCHLIST
from visage.governance.access import Principal, Role
from visage.usecases.identify import identify

BLOCKING = frozenset({"serious", "critical"})
SCENE = "scenes/obama_and_biden.jpg"

AXE = Axe()


def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    response = AXE.run(page).response
    assert response["passes"], f"axe-core checked nothing on {page.url}"
    found: list[dict[str, Any]] = response["violations"]
    return [v for v in found if v.get("impact") in BLOCKING]


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['html'][:160]}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def pages(open_page: Opener) -> Iterator[Callable[[str], Page]]:
    """One signed-in page per user for the whole module (sign-in once each)."""
    opened: dict[str, Page] = {}

    def get(name: str) -> Page:
        if name not in opened:
            opened[name] = sign_in(open_page(), name)
        return opened[name]

    yield get


def _subject_page(page: Page) -> None:
    page.goto("/subjects")
    page.get_by_role("link", name=KNOWN).click()
    expect(page.get_by_role("heading", name=KNOWN, level=1)).to_be_visible()


def _identified(page: Page, console: Console) -> None:
    page.goto("/identify")
    page.get_by_label("Image", exact=True).set_input_files(console.data / SCENE)
    page.get_by_role("button", name="Identify", exact=True).click()
    expect(page.locator("img.annotated")).to_be_visible()


def _ask_review(console: Console) -> None:
    """A pending watchlist item for the reviewers (the watchlist operator's search)."""
    asker = Principal(
        key_id=WATCHER, role=Role.operator, purposes=(WATCHLIST,), owner=WATCHER, kind="user"
    )
    result = identify(console.core, console.data / SCENE, WATCHLIST, asker.actor)
    assert any(f.review_id for f in result.faces), result


def _review_blind(page: Page, console: Console) -> None:
    _ask_review(console)
    page.goto("/reviews")
    expect(page.get_by_role("heading", name="Same person?")).to_be_visible()


def _review_named(page: Page, console: Console) -> None:
    page.goto("/reviews")
    page.get_by_role("button", name="Same person", exact=True).click()
    expect(page.get_by_role("heading", name="Your decision")).to_be_visible()


Setup = Callable[[Page, Console], None]


def goto(path: str) -> Setup:
    def go(page: Page, console: Console) -> None:
        del console
        page.goto(path)

    return go


SCREENS: list[tuple[str, str, Setup]] = [
    ("overview", "ada", goto("/")),
    ("admin", "ada", goto("/admin")),
    ("cameras", "ada", goto("/cameras")),
    ("events", "aude", goto("/events")),
    ("audit", "aude", goto("/audit")),
    ("reports", "aude", goto("/reports")),
    ("subjects list", "enzo", goto("/subjects")),
    ("add subject", "enzo", goto("/subjects/new")),
    ("subject page", "enzo", lambda page, console: _subject_page(page)),
    ("identify", "olga", goto("/identify")),
    ("identify result", "olga", _identified),
    ("reviews, blind", "rita", _review_blind),
    ("reviews, named", "rita", _review_named),
    ("password", "remy", goto("/password")),
    ("refused (403)", "remy", goto("/admin")),
    ("not found (404)", "remy", goto("/no-such-page")),
]


def test_sign_in_page_has_no_serious_violation(open_page: Opener) -> None:
    page = open_page()
    page.goto("/sign-in")
    found = violations(page)
    assert not found, "axe-core on the sign-in page:\n" + describe(found)


@pytest.mark.parametrize(("screen", "user", "setup"), SCREENS, ids=[s[0] for s in SCREENS])
def test_page_has_no_serious_violation(
    screen: str,
    user: str,
    setup: Setup,
    pages: Callable[[str], Page],
    console: Console,
) -> None:
    page = pages(user)
    setup(page, console)
    expect(page.locator("h1")).to_have_count(1)
    found = violations(page)
    assert not found, f"axe-core on {screen} ({page.url}):\n" + describe(found)


def test_the_french_subject_page_has_no_serious_violation(open_page: Opener) -> None:
    page = sign_in(open_page("fr-FR"), "enzo", labels=FRENCH)
    _subject_page(page)
    found = violations(page)
    assert not found, "axe-core on the French subject page:\n" + describe(found)


FOCUSED = "() => [document.activeElement.id, (document.activeElement.innerText || '').trim()]"


def _tab_to(page: Page, *, text: str = "", element_id: str = "", limit: int = 40) -> None:
    """Press Tab until the focused element has the id ``element_id`` or the text ``text``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused_id, focused_text = page.evaluate(FOCUSED)
        if (element_id and focused_id == element_id) or (text and focused_text == text):
            return
    raise AssertionError(f"{text or element_id!r} cannot be reached with the Tab key")


def test_sign_in_and_navigate_with_the_keyboard_only(open_page: Opener) -> None:
    page = open_page()
    page.goto("/sign-in")
    if page.evaluate(FOCUSED)[0] != "username":  # autofocus puts it there already
        _tab_to(page, element_id="username")
    page.keyboard.type("olga")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")  # submits the form from the password field
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()

    _tab_to(page, text="Identify")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Identify / Verify", level=1)).to_be_visible()
    _tab_to(page, element_id="identify-purpose")  # the form's controls are reachable
    _tab_to(page, element_id="identify-image")

    # The Skip link takes keyboard users straight to the content.
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.innerText").strip() == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_reviewer_answers_with_the_keyboard_shortcut(console: Console, open_page: Opener) -> None:
    _ask_review(console)
    page = sign_in(open_page(), "remy")
    page.goto("/reviews")
    expect(page.get_by_role("heading", name="Same person?")).to_be_visible()
    page.keyboard.press("s")  # "Same person"
    expect(page.get_by_role("heading", name="Your decision")).to_be_visible()
    expect(page.get_by_text("Your answer, before seeing the name: Same person.")).to_be_visible()
