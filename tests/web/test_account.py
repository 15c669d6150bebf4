"""Your account: two-step sign-in for the roles that may set it up (admins, reviewers),
refused by the use-case for the others."""

from __future__ import annotations

import re
from collections.abc import Callable

import pyotp
from fastapi.testclient import TestClient

from tests.web.conftest import PASSWORD, csrf_of
from visage.core import Visage
from visage.governance.access import Role
from visage.governance.audit import Actor
from visage.usecases import users as users_uc

SECRET = re.compile(r'<code class="secret">([^<]+)</code>')


def _post(client: TestClient, path: str, **fields: str) -> object:
    token = csrf_of(client.get("/account").text)
    return client.post(path, data={"csrf": token, **fields})


def test_a_reviewer_turns_on_two_step_sign_in(
    as_user: Callable[[str], TestClient], console_core: Visage, server: TestClient
) -> None:
    users_uc.add_user(
        console_core, users_uc.NewUser(name="rosa", role=Role.reviewer), PASSWORD, Actor.local()
    )
    client = as_user("rosa")
    page = client.get("/account")
    assert page.status_code == 200 and "Two-step sign-in" in page.text
    token = csrf_of(page.text)
    begun = client.post("/account/totp/begin", data={"csrf": token})
    secret, uri = SECRET.findall(begun.text)
    assert uri.startswith("otpauth://totp/")
    code = pyotp.TOTP(secret).now()
    done = client.post(
        "/account/totp/confirm", data={"csrf": token, "secret": secret, "code": code}
    )
    assert done.status_code == 200 and 'role="status"' in done.text
    assert users_uc.get_user(console_core, "rosa").totp
    fresh = TestClient(server.app)
    form = csrf_of(fresh.get("/sign-in").text)
    refused = fresh.post("/sign-in", data={"username": "rosa", "password": PASSWORD, "csrf": form})
    assert refused.status_code == 401  # the code is needed now


def test_an_operator_cannot_set_it_up(as_user: Callable[[str], TestClient]) -> None:
    client = as_user("olga")
    page = client.get("/account")
    assert page.status_code == 200 and "Set up two-step sign-in" not in page.text
    token = csrf_of(page.text)
    refused = client.post("/account/totp/begin", data={"csrf": token})
    assert refused.status_code == 422  # the use-case's rule, not the page's
    assert "otpauth://" not in refused.text


def test_account_page_in_french(as_user: Callable[[str], TestClient]) -> None:
    html = as_user("rita").get("/account", headers={"Accept-Language": "fr"}).text
    assert "Votre compte" in html
