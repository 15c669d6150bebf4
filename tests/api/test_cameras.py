"""Cameras in the server: supervised watchers, events at /v1/events, secrets never shown."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import auth
from tests.conftest import make_app
from visage.api.app import create_app
from visage.app import Visage
from visage.governance.access import Role
from visage.usecases.enroll import enroll
from visage.usecases.keys import create_key
from visage.usecases.subjects import add_subject, make_consent


def test_a_camera_is_watched_and_its_events_listed(
    tmp_path: Path, shared_app: Visage, data: Path
) -> None:
    core = make_app(tmp_path / "home")
    core._analyzer = shared_app.analyzer
    sid = add_subject(core, "Lin", make_consent("F", ["stage"])).id
    enroll(core, sid, sorted((data / "people/lin_manuel_miranda").iterdir()))
    admin = auth(create_key(core, Role.admin, []).key)
    operator = auth(create_key(core, Role.operator, ["stage"]).key)
    with TestClient(create_app(core, housekeeping=False)) as client:
        r = client.post(
            "/v1/cameras",
            headers=admin,
            json={
                "name": "stage-left",
                "source": str(data / "video/hamilton_clip.mp4"),
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
        assert client.delete(f"/v1/cameras/{cid}", headers=admin).status_code == 204
        assert client.post("/v1/cameras", headers=operator, json={}).status_code == 403
    core.close()
