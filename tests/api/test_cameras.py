"""Cameras in the server: supervised watchers, events at /v1/events, secrets never shown."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.conftest import auth
from tests.conftest import make_app
from visage.api.app import create_app
from visage.cli import app as cli_app
from visage.core import Visage
from visage.governance.access import Role
from visage.usecases.cameras import add_camera, list_cameras
from visage.usecases.enroll import enroll
from visage.usecases.keys import create_key
from visage.usecases.subjects import add_subject, make_consent


def test_a_camera_is_watched_and_its_events_listed(
    tmp_path: Path, shared_app: Visage, data: Path, http_clip: str
) -> None:
    core = make_app(tmp_path / "home", models=shared_app)
    sid = add_subject(core, "Lin", make_consent("F", ["stage"])).id
    enroll(core, sid, sorted((data / "people/lin_manuel_miranda").iterdir()))
    admin = auth(create_key(core, Role.admin, [], owner="admin person").key)
    operator = auth(create_key(core, Role.operator, ["stage"]).key)
    with TestClient(create_app(core, housekeeping=False)) as client:
        r = client.post(
            "/v1/cameras",
            headers=admin,
            json={
                "name": "stage-left",
                "source": http_clip,
                "purpose": "stage",
            },
        )
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        deadline = time.monotonic() + 120
        events: list[dict[str, object]] = []
        while not events and time.monotonic() < deadline:
            time.sleep(0.5)
            events = client.get("/v1/events?camera=stage-left", headers=operator).json()
        assert events and events[0]["subject_id"] == sid and events[0]["camera"] == "stage-left"
        cams = client.get("/v1/cameras", headers=admin).json()
        assert cams[0]["status"]["frames"] > 0 and cams[0]["status"]["state"] in (
            "running",
            "retrying",
        )
        # The supervisor is the core's: another door reading the core sees the same worker.
        [seen] = list_cameras(core)
        assert seen.status.state in ("running", "retrying") and seen.status.frames > 0
        r = client.patch(f"/v1/cameras/{cid}", headers=admin, json={"enabled": False})
        assert r.json()["status"]["state"] == "stopped"
        r = client.post(
            "/v1/cameras",
            headers=admin,
            json={
                "name": "gate",
                "source": "rtsp://admin:hunter2@10.0.0.9/live",
                "purpose": "stage",
                "enabled": False,
            },
        )
        assert r.json()["source"] == "rtsp://admin:***@10.0.0.9/live"
        assert "hunter2" not in client.get("/v1/cameras", headers=admin).text
        assert (
            client.post(
                "/v1/cameras",
                headers=admin,
                json={"name": "p", "source": str(data / "video/hamilton_clip.mp4"), "purpose": "x"},
            ).status_code
            == 422
        )  # a path on the server: refused
        assert client.delete(f"/v1/cameras/{cid}", headers=admin).status_code == 204
        assert client.post("/v1/cameras", headers=operator, json={}).status_code == 403
    # The server stopped watching with its lifespan; the camera is still known to the core.
    assert [c.status.state for c in list_cameras(core)] == ["stopped"]
    core.close()


def test_the_cli_lists_the_cameras_with_their_status(tmp_path: Path) -> None:
    core = make_app(tmp_path / "home")
    add_camera(core, "gate", "rtsp://admin:hunter2@10.0.0.9/live", "stage")
    add_camera(core, "yard", "rtsp://10.0.0.10/live", "stage", enabled=False)
    core.close()
    result = CliRunner().invoke(
        cli_app, ["cameras", "list", "--json"], env={"VISAGE_HOME": str(tmp_path / "home")}
    )
    assert result.exit_code == 0, result.output
    listed = {c["name"]: c for c in json.loads(result.stdout)}
    assert listed["gate"]["source"] == "rtsp://admin:***@10.0.0.9/live"
    # Nobody watches cameras in a CLI process: it says so rather than "stopped".
    assert listed["gate"]["status"]["state"] == "unsupervised"
    assert listed["yard"]["status"]["state"] == "stopped"
    assert "hunter2" not in result.stdout
