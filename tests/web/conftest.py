"""Console fixtures: a real data dir, one user per role, a TestClient signed in as any of
them. Pages are driven over real HTTP (FastAPI's TestClient); the browser tests
(``tests/web/browser``) drive the same server with Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_app
from visage.core import Visage
from visage.governance.access import Role
from visage.governance.audit import Actor
from visage.usecases import users as users_uc
from visage.web.app import create_server

PASSWORD = "correct horse battery staple"
PURPOSE = "access-control"
WATCHLIST = "watchlist"

USERS: dict[str, tuple[Role, list[str]]] = {
    "ada": (Role.admin, []),
    "enzo": (Role.enroller, []),
    "olga": (Role.operator, [PURPOSE]),
    "rita": (Role.reviewer, []),
    "remy": (Role.reviewer, []),
    "aude": (Role.auditor, []),
}
"""One console user per role (two reviewers, for two-person review)."""

ROLE_USER = {
    Role.admin: "ada",
    Role.enroller: "enzo",
    Role.operator: "olga",
    Role.reviewer: "rita",
    Role.auditor: "aude",
}


def add_users(core: Visage) -> None:
    for name, (role, purposes) in USERS.items():
        users_uc.add_user(
            core,
            users_uc.NewUser(name=name, role=role, purposes=purposes),
            PASSWORD,
            Actor.local(),
        )


@pytest.fixture(scope="module")
def console_core(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    """A data dir with the six console users (models shared with the session)."""
    core = make_app(tmp_path_factory.mktemp("console"), models=shared_app)
    add_users(core)
    yield core
    core.close()


@pytest.fixture(scope="module")
def server(console_core: Visage) -> Iterator[TestClient]:
    app = create_server(console_core, housekeeping=False, watch_cameras=False)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    """``client`` signed in as ``name`` (its cookie jar holds the session)."""
    form = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={"username": name, "password": password, "csrf": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture()
def as_user(server: TestClient) -> Iterator[Callable[[str], TestClient]]:
    """``as_user(name)`` → a fresh TestClient on the same app, signed in as ``name``."""
    opened: list[TestClient] = []

    def make(name: str) -> TestClient:
        client = TestClient(server.app, base_url="http://testserver")
        opened.append(client)
        return sign_in(client, name)

    yield make
    for client in opened:
        client.close()


def page_csrf(client: TestClient, path: str = "/") -> str:
    """The CSRF token of the signed-in session, read from a page."""
    return csrf_of(client.get(path).text)
