"""Issue 11, items 4, 5 and 12 (camera audit): camera sources are an allow-list, FFmpeg
cannot be steered to another protocol, credentials never come back, and a camera that never
opened is audited as failed. Every attack goes through real HTTP into a real data dir."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth
from tests.conftest import make_app
from visage.api.app import create_app
from visage.core import Visage
from visage.errors import InputError
from visage.governance.access import Role
from visage.media.video import VideoReader
from visage.store.schema import CameraRow
from visage.usecases.cameras import OPEN_FAILED, camera_source, list_cameras
from visage.usecases.keys import create_key

PURPOSE = "access-control"
# Distinctive secrets, so that a hit anywhere can only be a leak.
PASSWORD = "Pw9s3cretQZX"
TOKEN = "TokQ7abcXJ24"
API_KEY = "KeyM3zzLW81v"
SECRET_URL = f"rtsp://cam-user:{PASSWORD}@127.0.0.1:1/live?token={TOKEN}&Api_Key={API_KEY}&ch=2"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """A real HTTP server on localhost with one canned answer per path."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, str]]]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, headers = answers.get(self.path, (404, {}))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": "0"}.items():
                    self.send_header(name, value)
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    app = make_app(tmp_path_factory.mktemp("camera-sources"), models=shared_app)
    yield app
    app.close()


@pytest.fixture(scope="module")
def admin(core: Visage) -> dict[str, str]:
    return auth(create_key(core, Role.admin, [], owner="admin person").key)


@pytest.fixture(scope="module")
def client(core: Visage) -> Iterator[TestClient]:
    with TestClient(create_app(core, housekeeping=False)) as c:
        yield c


def _wait_for_error(client: TestClient, admin: dict[str, str], name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for cam in client.get("/v1/cameras", headers=admin).json():
            if cam["name"] == name and cam["status"]["last_error"]:
                return dict(cam)
        time.sleep(0.1)
    raise AssertionError(f"camera {name} never reported an error")


REFUSED = [
    "file:///etc/passwd",
    "file:/etc/passwd",
    "FILE:///etc/passwd",
    "concat:/etc/passwd|/etc/hosts",
    "concat:http://127.0.0.1/a.mp4|http://127.0.0.1/b.mp4",
    "subfile,,start,0,end,100,,:/etc/passwd",
    "tcp://127.0.0.1:22",
    "udp://127.0.0.1:5000",
    "pipe:0",
    "data:video/mp4;base64,AAAA",
    "crypto:http://127.0.0.1/x",
    "async:http://127.0.0.1/x",
    "hls+http://127.0.0.1/x.m3u8",
    "/etc/passwd",
    "/work/shared/faces/video/hamilton_clip.mp4",
    "../../etc/passwd",
    "video.mp4",
    "rtsp:127.0.0.1/x",
    "rtsp:/127.0.0.1/x",
    "http:///x",
    " http://127.0.0.1/x",
    "http://127.0.0.1/x ",
    "http://127.0.0.1/x\nfile:///etc/passwd",
    "rtsp://127.0.0.1/x\r\n",
    "http://127.0.0.1\t/x",
    "http://127.0.0.1:99999/x",
    "ftp://127.0.0.1/x",
    "/dev/video0/../../etc/passwd",
    "/dev/sda",
    "-1",
]


@pytest.mark.parametrize("source", REFUSED)
def test_api_refuses_a_camera_source_off_the_allow_list(
    client: TestClient, admin: dict[str, str], source: str
) -> None:
    r = client.post(
        "/v1/cameras",
        headers=admin,
        json={"name": "probe", "source": source, "purpose": PURPOSE, "enabled": False},
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "/etc" not in r.text and "probe" not in [
        c["name"] for c in client.get("/v1/cameras", headers=admin).json()
    ]


@pytest.mark.parametrize(
    "source", ["rtsp://10.0.0.9/live", "rtsps://cam.local/s", "https://cam/x", "/dev/video0", "0"]
)
def test_api_accepts_network_cameras_and_local_devices(
    client: TestClient, admin: dict[str, str], source: str
) -> None:
    r = client.post(
        "/v1/cameras",
        headers=admin,
        json={"name": "ok-cam", "source": source, "purpose": PURPOSE, "enabled": False},
    )
    assert r.status_code == 201, r.text
    assert client.delete(f"/v1/cameras/{r.json()['id']}", headers=admin).status_code == 204


def test_a_redirect_never_switches_ffmpeg_to_another_protocol() -> None:
    """An http:// camera answers 302 to https:// on a port we listen on: FFmpeg must not
    follow (the protocol_whitelist of http:// holds only http and tcp)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.05)
    target = f"https://127.0.0.1:{listener.getsockname()[1]}/cam"
    connected: list[bool] = []
    opened = threading.Event()

    def accept() -> None:
        # Until the open has failed, then once more: a connection FFmpeg made during the
        # open waits in the backlog, so the last accept still finds it.
        while True:
            done = opened.is_set()
            try:
                conn, _ = listener.accept()
                connected.append(True)
                conn.close()
            except OSError:
                pass
            if done:
                return

    server = _Server({"/cam": (302, {"Location": target})})
    waiter = threading.Thread(target=accept)
    waiter.start()
    try:
        with pytest.raises(InputError):
            VideoReader(f"http://127.0.0.1:{server.port}/cam", timeout_s=2)
        opened.set()
        waiter.join()
    finally:
        server.close()
        listener.close()
    assert connected == [], "FFmpeg followed an http:// -> https:// redirect"


def test_a_failed_open_does_not_tell_what_exists(client: TestClient, admin: dict[str, str]) -> None:
    """A closed port and a server answering 404 must look the same in the camera status:
    no OS error, no HTTP status, nothing that maps the server's network."""
    server = _Server({})
    try:
        errors = []
        for name, url in (
            ("closed-port", f"http://127.0.0.1:{_closed_port()}/cam.mp4"),
            ("not-found", f"http://127.0.0.1:{server.port}/cam.mp4"),
        ):
            r = client.post(
                "/v1/cameras", headers=admin, json={"name": name, "source": url, "purpose": PURPOSE}
            )
            assert r.status_code == 201, r.text
            errors.append(_wait_for_error(client, admin, name)["status"]["last_error"])
            client.patch(f"/v1/cameras/{r.json()['id']}", headers=admin, json={"enabled": False})
    finally:
        server.close()
    assert errors == [OPEN_FAILED, OPEN_FAILED]


@pytest.fixture(scope="module")
def secret_camera(
    client: TestClient, admin: dict[str, str], core: Visage
) -> Iterator[dict[str, Any]]:
    """A camera whose URL carries a password, a token and an API key; it cannot be opened,
    so its error path (status, log, audit) runs too."""
    r = client.post(
        "/v1/cameras",
        headers=admin,
        json={"name": "door-secret", "source": SECRET_URL, "purpose": PURPOSE},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    failed = _wait_for_error(client, admin, "door-secret")
    yield {"created": created, "failed": failed}
    client.patch(f"/v1/cameras/{created['id']}", headers=admin, json={"enabled": False})


def _leaks(text: str) -> list[str]:
    return [s for s in (PASSWORD, TOKEN, API_KEY) if s in text]


def test_camera_credentials_never_come_back(
    client: TestClient,
    admin: dict[str, str],
    secret_camera: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    created = secret_camera["created"]
    assert created["source"] == ("rtsp://cam-user:***@127.0.0.1:1/live?token=***&Api_Key=***&ch=2")
    assert _leaks(str(created)) == []
    assert _leaks(str(secret_camera["failed"])) == []  # last_error included
    assert _leaks(client.get("/v1/cameras", headers=admin).text) == []
    assert _leaks(client.get("/v1/audit?limit=10000", headers=admin).text) == []
    # One more failed attempt while the log is captured.
    cam = client.patch(f"/v1/cameras/{created['id']}", headers=admin, json={"enabled": False})
    assert cam.status_code == 200
    client.patch(f"/v1/cameras/{created['id']}", headers=admin, json={"enabled": True})
    _wait_for_error(client, admin, "door-secret")
    time.sleep(0.2)
    assert caplog.records, "the failed open should be logged"
    assert _leaks("\n".join(r.getMessage() for r in caplog.records)) == []


def test_camera_credentials_are_sealed_at_rest(core: Visage, secret_camera: dict[str, Any]) -> None:
    with core.store.session() as session:
        row = session.get(CameraRow, secret_camera["created"]["id"])
        assert row is not None and row.source_sealed is not None
        assert camera_source(core, row) == SECRET_URL  # the supervisor still gets the URL
    for path in core.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (PASSWORD, TOKEN, API_KEY):
                assert secret.encode() not in data, f"{secret} in clear in {path.name}"


def test_an_old_plaintext_camera_row_is_sealed_on_next_read(tmp_path: Path) -> None:
    """A row stored before sealing existed (plaintext URL) is sealed and masked on the
    next read of the cameras."""
    core = make_app(tmp_path / "legacy")
    with core.store.session() as session:
        session.add(
            CameraRow(
                id="0" * 32,
                name="legacy",
                source=SECRET_URL,
                purpose=PURPOSE,
                enabled=False,
                created_at=datetime.now(UTC),
            )
        )
    shown = {c.name: c.source for c in list_cameras(core)}
    assert _leaks(shown["legacy"]) == []
    with core.store.session() as session:
        row = session.get(CameraRow, "0" * 32)
        assert row is not None and _leaks(row.source) == [] and row.source_sealed is not None
        assert camera_source(core, row) == SECRET_URL
    core.close()


def test_a_camera_that_never_opened_is_audited_as_failed(
    client: TestClient, admin: dict[str, str], secret_camera: dict[str, Any]
) -> None:
    entries = client.get("/v1/audit?limit=10000", headers=admin).json()
    watched = [e for e in entries if e["operation"] == "watch" and "door-secret" in e["actor"]]
    assert watched, "the camera's attempts are audited"
    assert all(e["outcome"] == "failed" for e in watched), [e["outcome"] for e in watched]
    assert all(e["details"]["frames"] == 0 for e in watched)
