"""Browser harness: the console served by a real uvicorn on a free localhost port, driven by
Playwright with Debian's Chromium (launched by path: browser downloads are not possible here).

One data dir and one server per module (models shared with the session), one browser for
the session, one browser context per user. A missing Chromium is a failure, never a skip:
the issue asks for the browser tests to run in ``make test``.
"""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.conftest import make_app
from tests.web.conftest import PASSWORD, PURPOSE, WATCHLIST, add_users
from visage.core import Visage
from visage.governance.access import Role
from visage.governance.audit import Actor
from visage.usecases import users as users_uc
from visage.usecases.enroll import enroll
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.subjects import add_subject, make_consent
from visage.web.app import create_server

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
BROWSER_NAMES = ("chromium", "chromium-browser")

WATCHER = "wanda"
"""An operator bound to the watchlist purpose (olga is bound to access-control only)."""

KNOWN = "Barack Obama"
"""Enrolled for access-control: the operator's match in the identify flow."""

WATCHED = "Joe Biden"
"""Enrolled with watchlist consent only: a bystander for access-control, a candidate for
review on the watchlist."""


def chromium_path() -> str:
    """Debian's Chromium, or a failure that says how to install it."""
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium found for the browser tests: install Debian's chromium: "
        "apt-get install -y chromium (or run make setup-test as root)",
        pytrace=False,
    )


# Per module, not per session: Playwright's sync API keeps an asyncio loop running on this
# thread while it is open, and under pytest-xdist other modules of the same worker (those
# that call asyncio.run) run between the browser modules.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
    yield launched
    launched.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving ``create_server(core)`` in a background thread."""

    def __init__(self, core: Visage) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_server(core, housekeeping=False, watch_cameras=False)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError("the console server stopped while starting")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the console server did not answer on {self.url} within 30 s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Console:
    """The running console: its data dir, its address, and the ids set up for the flows."""

    core: Visage
    url: str
    data: Path
    known_id: str
    watched_id: str


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path
) -> Iterator[Console]:
    """A data dir with the console users, a watchlist profile, a watchlist operator, and two
    enrolled people (set up through the use-cases: the flows are not about them)."""
    core = make_app(tmp_path_factory.mktemp("browser"), models=shared_app)
    set_profile(core, ProfileChanges(watchlist_purposes=[WATCHLIST]))
    add_users(core)
    users_uc.add_user(
        core,
        users_uc.NewUser(name=WATCHER, role=Role.operator, purposes=[WATCHLIST]),
        PASSWORD,
        Actor.local(),
    )
    known = add_subject(core, KNOWN, make_consent("AC-1", [PURPOSE])).id
    assert enroll(core, known, [data / "people/barack_obama/1.jpg"]).enrolled
    watched = add_subject(core, WATCHED, make_consent("WL-1", [WATCHLIST])).id
    photos = [data / "people/joe_biden/1.jpg", data / "people/joe_biden/2.jpg"]
    assert len(enroll(core, watched, photos).enrolled) == 2
    server = LiveServer(core)
    server.start()
    world = Console(core, server.url, data, known, watched)
    yield world
    server.stop()
    core.close()


Opener = Callable[..., Page]


@pytest.fixture(scope="module")
def open_page(browser: Browser, console: Console) -> Iterator[Opener]:
    """``open_page(locale="en-GB")`` → a page in a new browser context (its own cookies);
    the contexts close here, while the browser is still open."""
    contexts: list[BrowserContext] = []

    def make(locale: str = "en-GB") -> Page:
        context = browser.new_context(
            base_url=console.url, locale=locale, viewport=VIEWPORT, accept_downloads=True
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


ENGLISH = ("Username", "Password", "Sign in")
FRENCH = ("Nom d\u2019utilisateur", "Mot de passe", "Se connecter")
"""The sign-in form's labels (field, field, button) in each language the tests use."""


def sign_in(
    page: Page, name: str, password: str = PASSWORD, labels: tuple[str, str, str] = ENGLISH
) -> Page:
    """Sign in through the form, the way a person does, and land on the overview."""
    user, secret, button = labels
    page.goto("/sign-in")
    page.get_by_label(user, exact=True).fill(name)
    page.get_by_label(secret, exact=True).fill(password)
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_url(lambda url: "/sign-in" not in url)
    return page


@pytest.fixture(scope="module")
def as_user(open_page: Opener) -> Callable[..., Page]:
    """``as_user("enzo")`` → a page in its own browser context, signed in as enzo."""

    def make(name: str, locale: str = "en-GB") -> Page:
        labels = FRENCH if locale.startswith("fr") else ENGLISH
        return sign_in(open_page(locale), name, labels=labels)

    return make


MAX_SCREENSHOT = 300_000
"""Bytes: screenshots are committed, so a photo-heavy page is reduced to a 128-colour
palette and, if still too large, to the visible part of the page."""


def shot(page: Page, name: str, top: Locator | None = None) -> None:
    """A full-page screenshot for docs/screenshots (the README shows some); with ``top``,
    the window's view scrolled to start at that element instead."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    if top is not None:
        top.evaluate("element => element.scrollIntoView()")
    for full_page in (top is None, False):
        png = page.screenshot(full_page=full_page)
        if len(png) > MAX_SCREENSHOT:
            out = io.BytesIO()
            Image.open(io.BytesIO(png)).quantize(128).save(out, "PNG", optimize=True)
            png = out.getvalue()
        if len(png) <= MAX_SCREENSHOT:
            break
    path.write_bytes(png)
