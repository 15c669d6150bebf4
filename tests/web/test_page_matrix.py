"""Every console page and action, times every role, against the one policy.

Each console route names the use-case it serves (``PAGES``); the expected answer for each
role comes from :data:`visage.governance.access.POLICY`, the table the API and the CLI
check too. A role outside the policy gets 403 — for a POST even with a valid CSRF token —
and a role inside it never does. A console route missing from ``PAGES`` fails the build,
so a new page cannot ship without its line here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.web.conftest import ROLE_USER, csrf_of, sign_in
from visage.governance.access import POLICY, Role, UseCase
from visage.web.app import is_console

U = UseCase
PAGES: dict[tuple[str, str], UseCase] = {
    ("GET", "/"): U.overview,
    ("GET", "/admin"): U.users,
    ("POST", "/admin/keys"): U.keys,
    ("POST", "/admin/keys/{}/revoke"): U.keys,
    ("POST", "/admin/profile"): U.profile,
    ("POST", "/admin/users"): U.users,
    ("POST", "/admin/users/{}/disable"): U.users,
    ("POST", "/admin/users/{}/enable"): U.users,
    ("POST", "/admin/users/{}/password"): U.users,
    ("POST", "/admin/users/{}/totp-off"): U.users,
    ("GET", "/audit"): U.audit,
    ("GET", "/audit/export.jsonl"): U.audit,
    ("GET", "/audit/public-key.pem"): U.audit,
    ("POST", "/audit/verify"): U.audit,
    ("GET", "/cameras"): U.cameras,
    ("POST", "/cameras"): U.cameras,
    ("GET", "/cameras/{}"): U.cameras,
    ("POST", "/cameras/{}"): U.cameras,
    ("POST", "/cameras/{}/disable"): U.cameras,
    ("POST", "/cameras/{}/enable"): U.cameras,
    ("GET", "/cameras/{}/preview.jpg"): U.cameras,
    ("GET", "/cameras/{}/sign.{}"): U.cameras,
    ("GET", "/events"): U.events,
    ("POST", "/halts"): U.halt,
    ("POST", "/halts/resume"): U.halt,
    ("GET", "/identify"): U.recognise,
    ("POST", "/identify"): U.recognise,
    ("GET", "/identify/outcome/{}"): U.review_outcome,
    ("POST", "/identify/verify"): U.recognise,
    ("GET", "/reports"): U.audit,
    ("GET", "/reports/dpia-pack"): U.audit,
    ("GET", "/reports/dpia-pack.json"): U.audit,
    ("GET", "/reports/processing-record"): U.audit,
    ("GET", "/reports/processing-record.json"): U.audit,
    ("GET", "/reports/transparency.html"): U.audit,
    ("GET", "/reports/transparency.json"): U.audit,
    ("GET", "/reviews"): U.review,
    ("POST", "/reviews/{}/answer"): U.review,
    ("POST", "/reviews/{}/decide"): U.review,
    ("GET", "/reviews/{}/probe.jpg"): U.review,
    ("GET", "/reviews/{}/reference/{}.jpg"): U.review,
    ("GET", "/subjects"): U.subjects,
    ("GET", "/subjects/new"): U.subjects,
    ("POST", "/subjects/new"): U.subjects,
    ("GET", "/subjects/{}"): U.subjects,
    ("POST", "/subjects/{}/consents"): U.subjects,
    ("POST", "/subjects/{}/consents/withdraw"): U.subjects,
    ("POST", "/subjects/{}/enrol"): U.subjects,
    ("POST", "/subjects/{}/erase"): U.subjects,
    ("POST", "/subjects/{}/export"): U.subjects,
    ("GET", "/subjects/{}/templates/{}/reference.jpg"): U.references,
}
"""The use-case each console route serves."""

SELF: set[tuple[str, str]] = {
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
    ("POST", "/sign-out"),
    ("GET", "/password"),
    ("POST", "/password"),
    ("GET", "/language/{}"),
    ("GET", "/account"),
    ("POST", "/account/totp/begin"),
    ("POST", "/account/totp/confirm"),
}
"""Routes about one's own session, open to anyone (signed in, for sign-out and password)."""

PUBLIC_PREFIX = "/public"
"""The public notice pages (issue 17): open to anyone, no sign-in; tests/web/test_public.py
checks that they show no person."""

UNKNOWN_ID = "0" * 32


def _key(method: str, path: str) -> tuple[str, str]:
    return method, re.sub(r"\{[^}]*\}", "{}", path)


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, APIRoute):
            for method in route.methods:
                yield method, prefix + route.path
        elif (inner := getattr(route, "original_router", None)) is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(inner.routes, prefix + getattr(context, "prefix", ""))


def console_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        _key(m, p)
        for m, p in _routes(app.routes)
        if is_console(p) and not p.startswith(PUBLIC_PREFIX)
    }


def test_every_console_route_has_a_line(server: TestClient) -> None:
    assert isinstance(server.app, FastAPI)
    routes = console_routes(server.app)
    assert routes - set(PAGES) - SELF == set(), "console routes without a line in PAGES"
    assert (set(PAGES) | SELF) - routes == set(), "PAGES lines for routes that do not exist"


@pytest.fixture(scope="module")
def clients(server: TestClient) -> Iterator[dict[Role, tuple[TestClient, str]]]:
    """One signed-in client per role, with its session's CSRF token."""
    made: dict[Role, tuple[TestClient, str]] = {}
    for role, name in ROLE_USER.items():
        client = sign_in(TestClient(server.app, base_url="http://testserver"), name)
        made[role] = (client, csrf_of(client.get("/password").text))
    yield made
    for client, _ in made.values():
        client.close()


@pytest.mark.parametrize(("method", "path"), sorted(PAGES), ids=lambda v: str(v))
def test_each_role_gets_exactly_what_the_policy_allows(
    clients: dict[Role, tuple[TestClient, str]], method: str, path: str
) -> None:
    use_case = PAGES[(method, path)]
    url = path.replace("{}", UNKNOWN_ID, 1).replace("{}", "0")
    for role, (client, csrf) in clients.items():
        if method == "GET":
            response = client.get(url, follow_redirects=False)
        else:
            response = client.post(url, data={"csrf": csrf}, follow_redirects=False)
        allowed = role in POLICY[use_case]
        if allowed:
            assert response.status_code != 403, (role, method, url, response.text[:300])
            assert response.status_code < 500, (role, method, url, response.text[:300])
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)
            assert response.headers["content-type"].startswith("text/html")
