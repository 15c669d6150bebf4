"""Attacks on the law-enforcement + public-space gate (issue 11, item 6).

Live 1:N was already refused for that profile; the attack was to send a camera's frames one
by one to ``identify``, with no authorisation reference and as fast as the server answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.conftest import auth
from visage.api.app import create_app
from visage.cli import app as cli_app
from visage.core import Visage
from visage.errors import VisageError
from visage.governance.access import Role
from visage.governance.audit import Actor
from visage.governance.profile import GateError, IdentifyRateError
from visage.usecases import audit_log
from visage.usecases.identify import identify
from visage.usecases.keys import create_key
from visage.usecases.profile import ProfileChanges, set_profile

PURPOSE = "investigation"
FRAME = "lfw10/Tony_Blair/Tony_Blair_0001.jpg"
"""A real 250x250 photo: the gate and the ceiling count searches, whatever the frame holds,
and these tests make 26 of them (a 2-megapixel portrait costs ~5x more to analyse)."""


@pytest.fixture()
def core(fresh_app: Visage) -> Visage:
    set_profile(fresh_app, ProfileChanges(law_enforcement=True, public_space=True))
    return fresh_app


@pytest.fixture()
def client(core: Visage) -> Iterator[TestClient]:
    # The API's own per-key limiter is set high: the core's ceiling is what is tested.
    with TestClient(create_app(core, identify_per_minute=10_000)) as c:
        yield c


def _operator(core: Visage) -> dict[str, str]:
    return auth(create_key(core, Role.operator, [PURPOSE], owner="Officer").key)


def _identify_entries(core: Visage) -> list[audit_log.AuditEntry]:
    return audit_log.entries(core, operation="identify")


def test_identify_without_an_authorisation_ref_is_refused_and_audited(
    core: Visage, client: TestClient, data: Path
) -> None:
    operator, frame = _operator(core), (data / FRAME).read_bytes()
    r = client.post(f"/v1/identify?purpose={PURPOSE}", headers=operator, content=frame)
    assert r.status_code == 403 and "authorisation" in r.json()["detail"], r.text
    refused = _identify_entries(core)[-1]
    assert refused.outcome == "refused" and "26(10)" in refused.details["reason"]

    r = client.post(
        f"/v1/identify?purpose={PURPOSE}&authorisation_ref=WARRANT-2026-881",
        headers=operator,
        content=frame,
    )
    assert r.status_code == 200, r.text
    done = _identify_entries(core)[-1]
    assert done.outcome == "ok" and done.details["authorisation_ref"] == "WARRANT-2026-881"
    # As a multipart field beside the image, too.
    r = client.post(
        f"/v1/identify?purpose={PURPOSE}",
        headers=operator,
        files={"image": ("f.jpg", frame, "image/jpeg")},
        data={"authorisation_ref": "WARRANT-2026-882"},
    )
    assert r.status_code == 200, r.text
    assert _identify_entries(core)[-1].details["authorisation_ref"] == "WARRANT-2026-882"


def test_cli_identify_needs_the_authorisation_ref_too(core: Visage, data: Path) -> None:
    def cli(*args: str) -> Result:
        env = {"VISAGE_HOME": str(core.home)}
        return CliRunner().invoke(cli_app, ["identify", str(data / FRAME), *args], env=env)

    r = cli("--purpose", PURPOSE)
    assert r.exit_code == 2 and "--authorisation-ref" in r.stderr
    assert _identify_entries(core)[-1].outcome == "refused"
    r = cli("--purpose", PURPOSE, "--authorisation-ref", "WARRANT-7", "--json")
    assert r.exit_code in (0, 1), r.stderr  # nobody enrolled: 1, no match
    assert _identify_entries(core)[-1].details["authorisation_ref"] == "WARRANT-7"


def test_cli_anonymize_keep_enrolled_needs_the_authorisation_ref_too(
    core: Visage, data: Path, tmp_path: Path
) -> None:
    """--keep-enrolled recognises people, so it is a 1:N search like identify: without
    the reference it is refused (and audited), with it the reference is audited."""
    out = tmp_path / "anon.jpg"

    def cli(*args: str) -> Result:
        env = {"VISAGE_HOME": str(core.home)}
        argv = ["anonymize", str(data / FRAME), str(out), "--keep-enrolled", "--purpose"]
        return CliRunner().invoke(cli_app, [*argv, PURPOSE, *args], env=env)

    r = cli()
    assert r.exit_code == 2 and "--authorisation-ref" in r.stderr, r.stderr
    assert not out.exists()
    assert audit_log.entries(core, operation="anonymize")[-1].outcome == "refused"
    r = cli("--authorisation-ref", "WARRANT-9", "--json")
    assert r.exit_code == 0, r.stderr
    assert out.is_file()
    last = audit_log.entries(core, operation="anonymize")[-1]
    assert last.outcome == "ok" and last.details["authorisation_ref"] == "WARRANT-9"


def test_frames_one_by_one_are_refused_after_the_ceiling(
    core: Visage, client: TestClient, data: Path
) -> None:
    ceiling = core.settings.identify_rate_limit_law_enforcement_per_minute
    assert ceiling == 6  # the default is low
    operator, frame = _operator(core), (data / FRAME).read_bytes()
    url = f"/v1/identify?purpose={PURPOSE}&authorisation_ref=WARRANT-1"
    codes = [
        client.post(url, headers=operator, content=frame).status_code for _ in range(ceiling + 3)
    ]
    assert codes == [200] * ceiling + [429] * 3, codes
    entries = _identify_entries(core)
    assert [e.outcome for e in entries[-3:]] == ["refused"] * 3
    # Another key is counted on its own; the local user (CLI) is held to the same ceiling.
    other = _operator(core)
    assert client.post(url, headers=other, content=frame).status_code == 200
    local = Actor("local:officer", "admin")
    for _ in range(ceiling):
        identify(core, data / FRAME, PURPOSE, local, authorisation_ref="WARRANT-1")
    with pytest.raises(IdentifyRateError):
        identify(core, data / FRAME, PURPOSE, local, authorisation_ref="WARRANT-1")


def test_the_gate_and_ceiling_apply_only_to_that_profile(fresh_app: Visage, data: Path) -> None:
    for _ in range(fresh_app.settings.identify_rate_limit_law_enforcement_per_minute + 1):
        identify(fresh_app, data / FRAME, PURPOSE)  # no reference needed, no ceiling
    set_profile(fresh_app, ProfileChanges(law_enforcement=True, public_space=False))
    identify(fresh_app, data / FRAME, PURPOSE)
    set_profile(fresh_app, ProfileChanges(law_enforcement=True, public_space=True))
    with pytest.raises(GateError) as refused:
        identify(fresh_app, data / FRAME, PURPOSE, authorisation_ref="  ")
    assert isinstance(refused.value, VisageError) and "authorisation" in refused.value.message
