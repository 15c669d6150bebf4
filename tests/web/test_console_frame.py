"""The console's frame: sign-in, sessions, CSRF, security headers, roles, languages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import make_app
from tests.web.conftest import PASSWORD, add_users, csrf_of, page_csrf, sign_in
from visage.core import Visage
from visage.web.app import CSP, create_server

NAV = [
    "Overview",
    "Subjects",
    "Identify",
    "Reviews",
    "Events",
    "Cameras",
    "Audit",
    "Reports",
    "Admin",
]


def test_signed_out_pages_redirect_to_sign_in(server: TestClient) -> None:
    response = server.get("/?page=2&q=a b", follow_redirects=False)
    assert response.status_code == 303
    # the whole URL (query included) travels as one parameter value, and comes back whole
    location = response.headers["location"]
    assert location == "/sign-in?next=/%3Fpage%3D2%26q%3Da%2520b"
    form = server.get(location).text
    assert 'name="next" value="/?page=2&amp;q=a%20b"' in form


def test_sign_in_page_has_labelled_fields_and_strict_headers(server: TestClient) -> None:
    response = server.get("/sign-in")
    assert response.status_code == 200
    assert '<label for="username">Username</label>' in response.text
    assert '<label for="password">Password</label>' in response.text
    assert ">Sign in</button>" in response.text
    assert response.headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP and "'unsafe-inline'" not in CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text and " style=" not in response.text


def test_wrong_password_is_refused_with_one_message(server: TestClient) -> None:
    client = TestClient(server.app)
    token = csrf_of(client.get("/sign-in").text)
    for name in ("ada", "nobody"):
        response = client.post(
            "/sign-in", data={"username": name, "password": "wrong password!", "csrf": token}
        )
        assert response.status_code == 401
        assert "Unknown user name or wrong password." in response.text
        token = csrf_of(response.text)  # each form carries a fresh token


def test_sign_in_without_the_form_token_is_refused(server: TestClient) -> None:
    client = TestClient(server.app)
    response = client.post(
        "/sign-in",
        data={"username": "ada", "password": PASSWORD, "csrf": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "visage_session" not in response.cookies


def test_session_cookie_is_httponly_strict_and_signed(server: TestClient) -> None:
    client = TestClient(server.app)
    token = csrf_of(client.get("/sign-in").text)
    response = client.post(
        "/sign-in",
        data={"username": "ada", "password": PASSWORD, "csrf": token, "next": "/"},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"]
    assert "visage_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    value = client.cookies["visage_session"]
    client.cookies.set("visage_session", value[:-4] + "0000")  # altered signature
    assert client.get("/", follow_redirects=False).status_code == 303


def test_every_sign_in_gets_a_new_session_and_sign_out_ends_it(server: TestClient) -> None:
    client = sign_in(TestClient(server.app), "aude")
    first = client.cookies["visage_session"]
    sign_in(client, "aude")
    second = client.cookies["visage_session"]
    assert first != second
    stale = TestClient(server.app)
    stale.cookies.set("visage_session", first)
    assert stale.get("/", follow_redirects=False).status_code == 303  # the old one ended
    csrf = page_csrf(client)
    response = client.post("/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    replay = TestClient(server.app)
    replay.cookies.set("visage_session", second)
    assert replay.get("/", follow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_refused(
    as_user: Callable[[str], TestClient],
) -> None:
    client = as_user("aude")
    response = client.post("/sign-out", data={})
    assert response.status_code == 403
    assert client.get("/").status_code == 200  # still signed in


def test_navigation_shows_only_what_the_role_may_use(
    as_user: Callable[[str], TestClient],
) -> None:
    expected = {
        "ada": {"Overview", "Events", "Cameras", "Audit", "Reports", "Admin"},
        "enzo": {"Overview", "Subjects"},
        "olga": {"Overview", "Identify", "Events"},
        "rita": {"Overview", "Reviews"},
        "aude": {"Overview", "Events", "Audit", "Reports"},
    }
    for name, links in expected.items():
        html = as_user(name).get("/").text
        nav = html[html.index("<nav") : html.index("</nav>")]
        shown = {label for label in NAV if f">{label}</a>" in nav}
        assert shown == links, name


def test_french_from_accept_language_and_from_the_switch(
    as_user: Callable[[str], TestClient],
) -> None:
    client = as_user("enzo")
    html = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}).text
    assert '<html lang="fr"' in html and ">Personnes</a>" in html
    client.get("/language/ar?next=/")
    html = client.get("/").text
    assert '<html lang="ar" dir="rtl"' in html


def test_unknown_console_page_is_an_html_404_and_api_keeps_json(server: TestClient) -> None:
    page = server.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = server.get("/v1/subjects")
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"
    assert "content-security-policy" not in api.headers


def test_open_redirect_after_sign_in_is_refused(server: TestClient) -> None:
    client = TestClient(server.app)
    token = csrf_of(client.get("/sign-in").text)
    response = client.post(
        "/sign-in",
        data={"username": "ada", "password": PASSWORD, "csrf": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_cookies_are_secure_when_served_behind_https(tmp_path: Path, shared_app: Visage) -> None:
    core = make_app(tmp_path / "home", models=shared_app, web_secure_cookies=True)
    add_users(core)
    with TestClient(create_server(core, housekeeping=False, watch_cameras=False)) as client:
        token = csrf_of(client.get("/sign-in").text)
        response = client.post(
            "/sign-in",
            data={"username": "aude", "password": PASSWORD, "csrf": token, "next": "/"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]
    core.close()
