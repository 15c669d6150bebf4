"""Cameras (admins): status with fps and dropped frames, add (allow-list refusal shown),
edit, enable, disable, and a live preview in which every face is masked — the recognised
subject's included."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import serve_over_http
from tests.web.conftest import PURPOSE, page_csrf, sign_in
from visage.core import Visage
from visage.media.video import VideoReader
from visage.usecases import audit_log
from visage.usecases.cameras import list_cameras
from visage.usecases.enroll import enroll
from visage.usecases.subjects import add_subject, make_consent
from visage.web.app import create_server

FACE_THRESHOLD = 0.5


@pytest.fixture(scope="module")
def clip_url(data: Path) -> Iterator[str]:
    with serve_over_http(data / "video/hamilton_clip.mp4") as url:
        yield url


@pytest.fixture(scope="module")
def live(console_core: Visage, data: Path) -> Iterator[TestClient]:
    """A server that watches its cameras, with Lin-Manuel Miranda enrolled for the purpose
    (so the clip has a recognised face, which the redactor keeps visible)."""
    sid = add_subject(console_core, "Lin-Manuel Miranda", make_consent("C-3", [PURPOSE])).id
    assert enroll(console_core, sid, sorted((data / "people/lin_manuel_miranda").iterdir()))
    app = create_server(console_core, housekeeping=False)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def ada(live: TestClient) -> Iterator[TestClient]:
    with TestClient(live.app, base_url="http://testserver") as client:
        yield sign_in(client, "ada")


def faces_in(console_core: Visage, pixels: np.ndarray) -> int:
    return len(console_core.analyzer.detector.detect(pixels, FACE_THRESHOLD))


def wait_for_preview(client: TestClient, camera_id: str, timeout_s: float = 90) -> bytes:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get(f"/cameras/{camera_id}/preview.jpg")
        if response.status_code == 200:
            assert response.headers["content-type"] == "image/jpeg"
            assert response.headers["cache-control"] == "no-store"
            return response.content
        assert response.status_code == 404
        time.sleep(0.5)
    raise AssertionError("no preview from the running camera")


def test_a_refused_source_is_shown_on_the_form(console_core: Visage, ada: TestClient) -> None:
    for source in ("/srv/video/door.mp4", "file:///etc/passwd", "concat:a|b"):
        response = ada.post(
            "/cameras",
            data={
                "csrf": page_csrf(ada, "/cameras"),
                "name": "door",
                "source": source,
                "purpose": PURPOSE,
            },
        )
        assert response.status_code == 422
        assert 'role="alert"' in response.text and "camera source refused" in response.text
        assert 'value="door"' in response.text  # the form keeps what was typed
    assert list_cameras(console_core) == []


def test_camera_runs_and_its_preview_masks_every_face(
    console_core: Visage, ada: TestClient, clip_url: str
) -> None:
    page = ada.get("/cameras").text
    for label in ("Name", "Source", "Purpose"):
        assert f">{label}</label>" in page
    response = ada.post(
        "/cameras",
        data={
            "csrf": page_csrf(ada, "/cameras"),
            "name": "stage-left",
            "source": clip_url,
            "purpose": PURPOSE,
            "enabled": "1",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    [camera] = list_cameras(console_core)
    jpeg = wait_for_preview(ada, camera.id)
    preview = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert max(preview.shape[:2]) <= 640
    # The clip shows faces on its frames; the preview shows none.
    with VideoReader(clip_url) as reader:
        first = next(iter(reader.frames())).pixels
    assert faces_in(console_core, np.array(first)) >= 1
    assert faces_in(console_core, preview) == 0
    listing = ada.get("/cameras").text
    assert (
        "stage-left" in listing
        and f'src="/cameras/{camera.id}/preview.jpg" data-refresh="3"' in listing
    )
    status = list_cameras(console_core)[0].status
    assert status.state == "running" and status.frames > 0 and status.fps >= 0
    assert "Frames per second" in listing and "Dropped frames" in listing

    # Disable: the worker stops, the preview is gone; enable: it is watched again.
    token = page_csrf(ada, "/cameras")
    assert ada.post(f"/cameras/{camera.id}/disable", data={"csrf": token}).status_code == 200
    assert list_cameras(console_core)[0].enabled is False
    gone = ada.get(f"/cameras/{camera.id}/preview.jpg")
    assert gone.status_code == 404 and "not running" in gone.text
    assert ">Enable<" in ada.get("/cameras").text
    assert ada.post(f"/cameras/{camera.id}/enable", data={"csrf": token}).status_code == 200
    assert list_cameras(console_core)[0].enabled is True
    wait_for_preview(ada, camera.id)
    updates = audit_log.entries(console_core, operation="camera.update")
    assert [(e.actor, e.details["enabled"]) for e in updates[-2:]] == [
        ("user:ada", False),
        ("user:ada", True),
    ]


def test_edit_a_camera(console_core: Visage, ada: TestClient) -> None:
    [camera] = list_cameras(console_core)
    form = ada.get(f"/cameras/{camera.id}").text
    assert ">Save</button>" in form and "Leave empty to keep it." in form
    token = page_csrf(ada, f"/cameras/{camera.id}")
    refused = ada.post(
        f"/cameras/{camera.id}",
        data={
            "csrf": token,
            "name": "stage-left",
            "source": "file:///etc/passwd",
            "purpose": PURPOSE,
        },
    )
    assert refused.status_code == 422 and "camera source refused" in refused.text
    saved = ada.post(
        f"/cameras/{camera.id}",
        data={"csrf": token, "name": "stage-right", "source": "", "purpose": PURPOSE},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    [edited] = list_cameras(console_core)
    assert edited.name == "stage-right" and edited.source == camera.source
    entry = audit_log.entries(console_core, operation="camera.update")[-1]
    assert entry.actor == "user:ada" and entry.details["changed"] == ["name"]
    assert "Camera saved." in ada.get(saved.headers["location"]).text


def test_cameras_are_for_admins_only(live: TestClient, console_core: Visage) -> None:
    [camera] = list_cameras(console_core)
    for name in ("olga", "enzo", "rita", "aude"):
        with TestClient(live.app, base_url="http://testserver") as client:
            sign_in(client, name)
            token = page_csrf(client)
            assert client.get("/cameras").status_code == 403
            assert client.get(f"/cameras/{camera.id}/preview.jpg").status_code == 403
            added = client.post(
                "/cameras",
                data={"csrf": token, "name": "x", "source": "rtsp://h/s", "purpose": PURPOSE},
            )
            assert added.status_code == 403
            off = client.post(f"/cameras/{camera.id}/disable", data={"csrf": token})
            assert off.status_code == 403
    assert list_cameras(console_core)[0].enabled is True


def test_a_post_without_the_csrf_token_is_refused(console_core: Visage, ada: TestClient) -> None:
    [camera] = list_cameras(console_core)
    assert ada.post(f"/cameras/{camera.id}/disable", data={}).status_code == 403
    assert list_cameras(console_core)[0].enabled is True


def test_cameras_in_french(ada: TestClient) -> None:
    html = ada.get("/cameras", headers={"Accept-Language": "fr"}).text
    assert "<h1>Caméras</h1>" in html and ">Ajouter une caméra</button>" in html
