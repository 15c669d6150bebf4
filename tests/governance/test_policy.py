"""One access policy and one input model per use-case, the same through every door; domain
messages that name no door's syntax, each door adding its own hint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from tests.conftest import make_app
from visage.api.app import create_app
from visage.cli import app as cli_app
from visage.core import Visage
from visage.errors import VisageError
from visage.governance.access import (
    POLICY,
    ForbiddenError,
    KeyOwnerRequiredError,
    Principal,
    Role,
    UseCase,
    authorize,
    require_purpose,
)
from visage.governance.profile import DeploymentProfile, Jurisdiction
from visage.usecases.keys import create_key
from visage.usecases.profile import get_profile

PURPOSE = "access-control"


def _principal(role: Role, *purposes: str) -> Principal:
    return Principal(key_id="k", role=role, purposes=purposes, owner="Ana")


def test_policy_covers_every_use_case_and_decides_by_role() -> None:
    assert set(POLICY) == set(UseCase)
    for use_case, roles in POLICY.items():
        for role in Role:
            who = _principal(role)
            if role in roles:
                assert authorize(who, use_case) is who
            else:
                with pytest.raises(ForbiddenError, match=f"role {role.value} may not"):
                    authorize(who, use_case)


def test_purposes_are_normalised_and_bound_to_the_key() -> None:
    operator = _principal(Role.operator, PURPOSE)
    assert require_purpose(operator, " Access-Control ") == PURPOSE
    with pytest.raises(ForbiddenError, match="marketing"):
        require_purpose(operator, "marketing")
    with pytest.raises(VisageError, match="invalid purpose"):
        require_purpose(operator, "two words")


@pytest.mark.parametrize(
    "profile",
    [
        DeploymentProfile(),
        DeploymentProfile(dpia_ref="D", jurisdiction=Jurisdiction.MA),
        DeploymentProfile(dpia_ref="D", law_enforcement=True, public_space=True),
    ],
)
def test_domain_messages_name_no_door(profile: DeploymentProfile) -> None:
    gates = [profile.identification_gate(live=True), profile.authorisation_gate(None)]
    messages = [g.message for g in gates if g is not None]
    assert messages
    for message in messages:
        assert "--" not in message and "visage " not in message and "/v1" not in message


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visage]:
    core = make_app(tmp_path_factory.mktemp("policy"), dpia=False)
    yield core
    core.close()


@pytest.fixture(scope="module")
def client(core: Visage) -> Iterator[TestClient]:
    with TestClient(create_app(core, housekeeping=False, watch_cameras=False)) as c:
        yield c


def _cli(core: Visage, *args: str, key: str | None = None) -> Result:
    env = {"VISAGE_HOME": str(core.home), "VISAGE_DATABASE_URL": core.settings.database_url}
    if key is not None:
        env["VISAGE_API_KEY"] = key
    return CliRunner().invoke(cli_app, list(args), env=env)


def _bearer(core: Visage, role: Role, *purposes: str) -> dict[str, str]:
    key = create_key(core, role, list(purposes), owner=f"{role.value} person").key
    return {"Authorization": f"Bearer {key}"}


def test_the_cli_applies_the_same_policy(core: Visage) -> None:
    operator = create_key(core, Role.operator, [PURPOSE]).key
    r = _cli(core, "review", "list", key=operator)
    assert r.exit_code == 2
    assert "role operator may not do this (needs reviewer)" in r.stderr


def test_gate_hints_per_door(core: Visage, client: TestClient, data: Path) -> None:
    image = (data / "people/joe_biden/1.jpg").read_bytes()
    r = client.post(
        f"/v1/identify?purpose={PURPOSE}",
        headers=_bearer(core, Role.operator, PURPOSE),
        content=image,
    )
    assert r.status_code == 403
    problem = r.json()
    assert "DPIA reference is recorded in the deployment profile" in problem["detail"]
    assert "PATCH /v1/profile" in problem["hint"] and "--" not in problem["hint"]
    r = _cli(core, "identify", str(data / "people/joe_biden/1.jpg"), "--purpose", PURPOSE)
    assert r.exit_code == 2
    assert "(hint: visage profile set --dpia-ref REF)" in r.stderr
    assert "PATCH" not in r.stderr


def test_key_input_refusals_with_hints(core: Visage, client: TestClient) -> None:
    with pytest.raises(KeyOwnerRequiredError):
        create_key(core, Role.reviewer, [])
    r = client.post("/v1/keys", headers=_bearer(core, Role.admin), json={"role": "reviewer"})
    assert r.status_code == 400 and '"owner"' in r.json()["hint"]
    r = _cli(core, "keys", "create", "--role", "operator")
    assert r.exit_code == 2 and "(hint: add --purpose PURPOSE" in r.stderr


def test_profile_changes_one_model_for_both_doors(core: Visage, client: TestClient) -> None:
    admin = _bearer(core, Role.admin)
    r = client.patch("/v1/profile", headers=admin, json={"jurisdiction": "Atlantis"})
    assert r.status_code == 422 and "jurisdiction" in r.json()["detail"]
    r = client.patch("/v1/profile", headers=admin, json={"unknown": 1})
    assert r.status_code == 422  # extra fields are refused, not ignored
    r = _cli(core, "profile", "set", "--jurisdiction", "Atlantis")
    assert r.exit_code == 2 and "--jurisdiction:" in r.stderr
    r = _cli(core, "profile", "set", "--dpia-ref", "x" * 201)
    assert r.exit_code == 2 and "--dpia-ref:" in r.stderr
    before = get_profile(core)
    r = client.patch("/v1/profile", headers=admin, json={"controller": "Example SA"})
    assert r.json()["controller"] == "Example SA" and r.json()["dpia_ref"] == before.dpia_ref
    r = _cli(core, "profile", "set", "--controller", "", "--json")
    assert r.exit_code == 0, r.stderr
    assert get_profile(core).controller is None  # '' clears, through either door


def test_consent_input_is_one_model(core: Visage, client: TestClient) -> None:
    body = {"name": "Ada", "consent": {"reference": "F-1", "purposes": [PURPOSE]}}
    enroller = _bearer(core, Role.enroller)
    r = client.post("/v1/subjects", headers=enroller, json=body)
    assert r.status_code == 201
    bad = {**body, "consent": {**body["consent"], "expires_on": "tomorrow"}}  # type: ignore[dict-item]
    assert client.post("/v1/subjects", headers=enroller, json=bad).status_code == 422
    r = _cli(
        core,
        "subject",
        "add",
        "Ada",
        "--consent-ref",
        "F-2",
        "--purpose",
        PURPOSE,
        "--expires",
        "tomorrow",
    )
    assert r.exit_code == 2 and "--expires:" in r.stderr
    r = _cli(core, "subject", "add", "Ada", "--consent-ref", "F-2", "--purpose", PURPOSE, "--json")
    assert r.exit_code == 0, r.stderr


def test_transparency_report_one_renderer(core: Visage, client: TestClient, tmp_path: Path) -> None:
    auditor = _bearer(core, Role.auditor)
    r = client.get("/v1/reports/transparency?format=html", headers=auditor)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Visage transparency report</h1>" in r.text
    data = client.get("/v1/reports/transparency", headers=auditor).json()
    assert set(data) >= {"facts", "figures", "audit_intact"} and "path" not in data
    assert client.get("/v1/reports/transparency?format=pdf", headers=auditor).status_code == 422
    out = tmp_path / "report.html"
    r = _cli(core, "report", "transparency", "--out", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    assert "<h1>Visage transparency report</h1>" in out.read_text()
    assert set(data["facts"]) == set(json.loads(r.stdout)["facts"])
