"""The Admin screen: users (add, one-time passwords, disable, enable, reset), API keys
(shown once, revoke), the deployment profile form and two-step sign-in — admins only."""

from __future__ import annotations

import re
from collections.abc import Callable

import pyotp
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.web.conftest import PASSWORD, csrf_of, page_csrf, sign_in
from visage.core import Visage
from visage.governance.access import Role
from visage.governance.audit import Actor
from visage.usecases import audit_log as audit_uc
from visage.usecases import profile as profile_uc
from visage.usecases import users as users_uc

Login = Callable[[str], TestClient]

SHOWN_ONCE = re.compile(r'<code class="secret">([^<]+)</code>')


@pytest.fixture(scope="module")
def admin(server: TestClient) -> TestClient:
    return sign_in(TestClient(server.app, base_url="http://testserver"), "ada")


def post(client: TestClient, path: str, **fields: str) -> Response:
    return client.post(path, data={"csrf": page_csrf(client, "/admin"), **fields})


def try_sign_in(server: TestClient, name: str, password: str) -> int:
    client = TestClient(server.app, base_url="http://testserver")
    token = csrf_of(client.get("/sign-in").text)
    response = client.post(
        "/sign-in",
        data={"username": name, "password": password, "csrf": token, "next": "/"},
        follow_redirects=False,
    )
    return response.status_code


def test_admin_page_has_the_labelled_forms(admin: TestClient) -> None:
    response = admin.get("/admin")
    assert response.status_code == 200
    html = response.text
    assert "<h1>Admin</h1>" in html
    for label in ("Name", "Role", "Purposes", "Password", "Owner"):
        assert re.search(rf'<label for="[a-z-]+">{label}</label>', html), label
    for button in ("Add user", "Create key", "Save profile"):
        assert f">{button}</button>" in html
    for name in ("ada", "enzo", "olga", "rita", "remy", "aude"):
        assert f'<th scope="row">{name}</th>' in html
    assert 'value="DPIA-TEST-2026-01"' in html  # the profile form shows the stored profile
    assert " style=" not in html and "<script>" not in html


@pytest.mark.parametrize("name", ["enzo", "olga", "rita", "aude"])
def test_other_roles_are_refused(as_user: Login, name: str, console_core: Visage) -> None:
    client = as_user(name)
    assert client.get("/admin").status_code == 403
    token = page_csrf(client)
    for path, fields in (
        ("/admin/users", {"name": "intruder", "role": "admin", "password": PASSWORD}),
        ("/admin/users/ada/disable", {}),
        ("/admin/users/ada/password", {}),
        ("/admin/keys", {"role": "admin"}),
        ("/admin/keys/whatever/revoke", {}),
        ("/admin/profile", {"dpia_ref": ""}),
    ):
        response = client.post(path, data={"csrf": token, **fields})
        assert response.status_code == 403, path
    names = [u.name for u in users_uc.list_users(console_core)]
    assert "intruder" not in names
    assert users_uc.get_user(console_core, "ada").disabled_at is None
    assert profile_uc.get_profile(console_core).dpia_ref == "DPIA-TEST-2026-01"


def test_a_post_without_the_csrf_token_is_refused(admin: TestClient, console_core: Visage) -> None:
    response = admin.post(
        "/admin/users", data={"name": "forged", "role": "admin", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "forged" not in [u.name for u in users_uc.list_users(console_core)]
    wrong = admin.post("/admin/users/enzo/disable", data={"csrf": "not-the-token"})
    assert wrong.status_code == 403
    assert users_uc.get_user(console_core, "enzo").disabled_at is None


def test_add_disable_enable_a_user(
    admin: TestClient, server: TestClient, console_core: Visage
) -> None:
    response = post(
        admin,
        "/admin/users",
        name="otto",
        role="operator",
        purposes="access-control, doors",
        password="otto's long password",
    )
    assert response.status_code == 201, response.text
    assert "User otto added." in response.text and "shown only this once" not in response.text
    otto = users_uc.get_user(console_core, "otto")
    assert otto.purposes == ["access-control", "doors"] and not otto.must_change_password
    assert try_sign_in(server, "otto", "otto's long password") == 303

    disabled = post(admin, "/admin/users/otto/disable")
    assert disabled.status_code == 200 and "User otto disabled" in disabled.text
    assert try_sign_in(server, "otto", "otto's long password") == 401

    enabled = post(admin, "/admin/users/otto/enable")
    assert enabled.status_code == 200
    assert try_sign_in(server, "otto", "otto's long password") == 303

    created = audit_uc.search(
        console_core, audit_uc.AuditQuery(operation="user.create", actor="user:ada")
    )
    assert any(e.details.get("user") == "otto" for e in created.entries)
    disables = audit_uc.search(console_core, audit_uc.AuditQuery(operation="user.disable"))
    assert disables.entries[0].actor == "user:ada"


def test_generated_and_reset_passwords_are_one_time(
    admin: TestClient, server: TestClient, console_core: Visage
) -> None:
    response = post(admin, "/admin/users", name="gina", role="enroller")
    assert response.status_code == 201
    shown = SHOWN_ONCE.findall(response.text)
    assert len(shown) == 1 and len(shown[0]) >= 12
    assert users_uc.get_user(console_core, "gina").must_change_password
    assert shown[0] not in admin.get("/admin").text  # never again
    client = TestClient(server.app, base_url="http://testserver")
    token = csrf_of(client.get("/sign-in").text)
    first = client.post(
        "/sign-in",
        data={"username": "gina", "password": shown[0], "csrf": token, "next": "/"},
        follow_redirects=False,
    )
    assert first.status_code == 303 and first.headers["location"] == "/password"

    reset = post(admin, "/admin/users/gina/password")
    assert reset.status_code == 200 and "New one-time password for gina." in reset.text
    (again,) = SHOWN_ONCE.findall(reset.text)
    assert again != shown[0]
    assert try_sign_in(server, "gina", shown[0]) == 401
    assert client.get("/", follow_redirects=False).status_code == 303  # her session ended
    assert try_sign_in(server, "gina", again) == 303


def test_refusals_are_messages(admin: TestClient, console_core: Visage) -> None:
    no_purpose = post(admin, "/admin/users", name="opal", role="operator", password=PASSWORD)
    assert no_purpose.status_code >= 400
    assert 'role="alert"' in no_purpose.text and "Traceback" not in no_purpose.text
    assert "opal" not in [u.name for u in users_uc.list_users(console_core)]
    bad_name = post(admin, "/admin/users", name="no spaces", role="auditor", password=PASSWORD)
    assert bad_name.status_code == 422 and "name" in bad_name.text
    short = post(admin, "/admin/users", name="shorty", role="auditor", password="short")
    assert short.status_code >= 400 and "at least 12 characters" in short.text
    twice = post(admin, "/admin/users", name="ADA", role="auditor", password=PASSWORD)
    assert twice.status_code >= 400 and 'role="alert"' in twice.text
    unknown = post(admin, "/admin/users/nobody/disable")
    assert unknown.status_code == 404 and 'role="alert"' in unknown.text
    reviewer_key = post(admin, "/admin/keys", role="reviewer")
    assert reviewer_key.status_code >= 400 and "owner" in reviewer_key.text.lower()


def test_api_key_shown_once_works_and_is_revoked(admin: TestClient, server: TestClient) -> None:
    response = post(admin, "/admin/keys", role="auditor", owner="Aude Martin", name="audit box")
    assert response.status_code == 201
    (key,) = SHOWN_ONCE.findall(response.text)
    key_id = re.search(r"API key ([0-9a-f]+) created\.", response.text)
    assert key_id
    assert key not in admin.get("/admin").text
    bearer = {"Authorization": f"Bearer {key}"}
    assert server.get("/v1/audit", params={"limit": 1}, headers=bearer).status_code == 200

    revoked = post(admin, f"/admin/keys/{key_id.group(1)}/revoke")
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert server.get("/v1/audit", params={"limit": 1}, headers=bearer).status_code == 401


def test_profile_form_saves_the_dpia_reference(admin: TestClient, console_core: Visage) -> None:
    before = profile_uc.get_profile(console_core)
    response = post(
        admin,
        "/admin/profile",
        jurisdiction="FR",
        controller="Ville de Lyon, 1 place de la Comédie",
        dpo_contact="dpo@example.org",
        dpia_ref="DPIA-2026-42",
        cndp_ref="",
        watchlist_purposes="watchlist",
        public_space="yes",
    )
    assert response.status_code == 200, response.text
    assert "Deployment profile saved." in response.text
    profile = profile_uc.get_profile(console_core)
    assert profile.dpia_ref == "DPIA-2026-42" and profile.jurisdiction.value == "FR"
    assert profile.public_space and not profile.law_enforcement
    assert profile.watchlist_purposes == ["watchlist"]
    assert 'value="DPIA-2026-42"' in response.text
    entry = audit_uc.search(console_core, audit_uc.AuditQuery(operation="profile.set")).entries[0]
    assert entry.actor == "user:ada" and "dpia_ref" in entry.details["changed"]

    bad = post(admin, "/admin/profile", jurisdiction="XX", dpia_ref="DPIA-2026-42")
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert profile_uc.get_profile(console_core).jurisdiction.value == "FR"
    profile_uc.set_profile(console_core, profile_uc.ProfileChanges(**before.model_dump()))


def test_two_step_sign_in(as_user: Login, console_core: Visage, server: TestClient) -> None:
    users_uc.add_user(
        console_core,
        users_uc.NewUser(name="tina", role=Role.admin),
        PASSWORD,
        Actor.local(),
    )
    client = as_user("tina")
    begun = post(client, "/account/totp/begin")
    assert begun.status_code == 200
    secret, uri = SHOWN_ONCE.findall(begun.text)
    assert uri.startswith("otpauth://totp/") and secret in uri
    wrong = post(client, "/account/totp/confirm", secret=secret, code="000000")
    assert wrong.status_code >= 400 and secret in wrong.text  # try again, same secret
    confirmed = post(client, "/account/totp/confirm", secret=secret, code=pyotp.TOTP(secret).now())
    assert confirmed.status_code == 200
    assert users_uc.get_user(console_core, "tina").totp
    assert try_sign_in(server, "tina", PASSWORD) == 401  # the code is needed now


def test_french_page(admin: TestClient) -> None:
    html = admin.get("/admin", headers={"Accept-Language": "fr"}).text
    assert '<html lang="fr"' in html
    assert "Ajouter un utilisateur" in html
    assert "Profil de déploiement" in html
    assert "Clés API" in html
