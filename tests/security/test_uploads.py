"""Issue 11, items 7, 10 and 12: uploads and decoding are bounded; bad input is never a 5xx;
``/metrics`` needs a key; ``/readyz`` tells a caller nothing of its cause.

Each test is the attack, run against a real data dir, real images and real HTTP (FastAPI's
TestClient): an endless multipart upload, a photo that must not reach the temp directory,
tiny files that decode huge, metadata chunks that inflate past Pillow's limit, a raw body to
an endpoint that wants two images, a flood of model calls, an anonymous metrics scrape.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import sys
import tempfile
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import auth
from tests.conftest import make_app
from visage.api.app import create_app
from visage.api.uploads import FRAMING
from visage.config import Settings
from visage.core import Visage
from visage.errors import ImageTooLargeError
from visage.governance.access import Role
from visage.media.image import decode_image
from visage.usecases.keys import create_key
from visage.usecases.subjects import add_subject, make_consent

PURPOSE = "access-control"
SMALL = 200_000
"""The byte limit of the ``small`` data dir."""


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    app = make_app(tmp_path_factory.mktemp("uploads-home"), models=shared_app)
    yield app
    app.close()


@pytest.fixture(scope="module")
def keys(core: Visage) -> dict[Role, str]:
    roles = (Role.operator, Role.enroller, Role.auditor, Role.admin)
    return {
        role: create_key(core, role, [PURPOSE] if role is Role.operator else []).key
        for role in roles
    }


@pytest.fixture(scope="module")
def client(core: Visage) -> Iterator[TestClient]:
    with TestClient(create_app(core, housekeeping=False, watch_cameras=False)) as c:
        yield c


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    app = make_app(tmp_path_factory.mktemp("small-home"), max_bytes=SMALL, models=shared_app)
    yield app
    app.close()


# --- item 7: the byte limit holds while the body arrives ------------------------------------


def _endless_multipart() -> Iterator[bytes]:
    """A multipart body whose one file part goes on (up to :data:`ENDLESS` bytes, so that a
    server without a limit answers in the end instead of hanging the test)."""
    yield (
        b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0"
    )
    yield from _endless_raw()


def _endless_raw() -> Iterator[bytes]:
    for _ in range(ENDLESS // CHUNK):
        yield b"\x00" * CHUNK


CHUNK = 16_384
ENDLESS = 20 * SMALL


def _post_chunked(
    app: Any, target: str, headers: dict[str, str], body: Iterator[bytes]
) -> tuple[int, int]:
    """POST ``body`` to the ASGI ``app`` as a server does with a chunked request: one
    ``http.request`` message per chunk as it arrives. Returns the status and how many body
    bytes the app pulled in before it answered."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    pulled = 0
    answered: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if answered:
            return {"type": "http.disconnect"}
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return answered[0], pulled


@pytest.mark.parametrize("route", ["/v1/detect", f"/v1/identify?purpose={PURPOSE}"])
def test_endless_chunked_multipart_is_cut_off_at_the_limit(small: Visage, route: str) -> None:
    key = create_key(small, Role.operator, [PURPOSE]).key
    headers = {**auth(key), "Content-Type": "multipart/form-data; boundary=XyZ"}
    app = create_app(small, housekeeping=False, watch_cameras=False)
    status, pulled = _post_chunked(app, route, headers, _endless_multipart())
    assert status == 413
    # No more than the limit, the multipart framing allowance and the chunk that crossed it.
    assert pulled <= SMALL + FRAMING + CHUNK, pulled


def test_endless_raw_body_is_cut_off_at_the_limit(small: Visage) -> None:
    key = create_key(small, Role.operator, [PURPOSE]).key
    app = create_app(small, housekeeping=False, watch_cameras=False)
    status, pulled = _post_chunked(app, "/v1/detect", auth(key), _endless_raw())
    assert status == 413
    assert pulled <= SMALL + CHUNK, pulled


def test_declared_oversize_is_refused_unread(small: Visage, data: Path) -> None:
    key = create_key(small, Role.operator, [PURPOSE]).key
    big = (data / "people/shea_whigham/1.jpg").read_bytes()
    assert len(big) > 2 * SMALL + FRAMING
    with TestClient(create_app(small, housekeeping=False, watch_cameras=False)) as c:
        r = c.post("/v1/detect", headers=auth(key), files={"image": big})
        assert r.status_code == 413
        r = c.post(
            f"/v1/verify?purpose={PURPOSE}",
            headers=auth(key),
            files={"image_a": big[:1000], "image_b": big},
        )
        assert r.status_code == 413


# --- item 7: no plaintext on disk ------------------------------------------------------------

_WATCHED: list[Path] = []
_WRITES: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Records every file opened, created or renamed under a watched directory (file
    creation through ``open``/``os.open``, including unnamed O_TMPFILE files, which no
    directory listing would show)."""
    if not _WATCHED or event not in ("open", "os.rename", "tempfile.mkstemp", "os.mkdir"):
        return
    path = args[0]
    if not isinstance(path, (str, bytes, os.PathLike)):
        return
    full = os.path.abspath(os.fsdecode(path))
    if any(full == str(w) or full.startswith(f"{w}{os.sep}") for w in _WATCHED):
        _WRITES.append(f"{event} {full}")


sys.addaudithook(_audit)


def test_multipart_upload_never_reaches_the_temp_dir(
    client: TestClient,
    keys: dict[Role, str],
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo = (data / "people/shea_whigham/1.jpg").read_bytes()
    assert len(photo) > 1024 * 1024  # larger than Starlette's in-memory spool
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    _WATCHED.append(spool)
    try:
        r = client.post("/v1/detect", headers=auth(keys[Role.operator]), files={"image": photo})
    finally:
        _WATCHED.clear()
    assert r.status_code == 200, r.text
    assert r.json()["faces"], "the face was found: the upload was really processed"
    assert _WRITES == [], _WRITES
    leftovers = list(spool.rglob("*"))
    assert leftovers == []
    assert not any(photo[1000:2000] in f.read_bytes() for f in leftovers if f.is_file())


# --- item 7: decoded size ---------------------------------------------------------------------


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def test_sixteen_bit_png_costs_no_more_than_its_pixel_budget() -> None:
    """A tiny 16-bit PNG at the pixel limit: its conversion used to make full-size float64
    copies (8 bytes a pixel each, several at once: > 1 GB at the default limit)."""
    max_pixels = 4_000_000
    deep = np.zeros((2000, 2000), dtype=np.uint16)
    deep[::9, ::7] = 50_000
    data = _png(Image.fromarray(deep))
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        loaded = decode_image(data, max_pixels=max_pixels, max_bytes=10**8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert loaded.pixels.shape == (2000, 2000, 3)
    assert loaded.pixels[0, 0, 0] == round(50_000 / 65535 * 255)
    assert peak <= max_pixels * 4, f"{peak / 1e6:.0f} MB"


def test_deep_image_over_the_decoded_budget_is_refused_before_decoding(
    client: TestClient, keys: dict[Role, str]
) -> None:
    """Within the pixel limit but 4 bytes a pixel: more than an 8-bit RGB image at the limit."""
    rgba = _png(Image.new("RGBA", (2000, 2000), (1, 2, 3, 4)))
    assert len(rgba) < 100_000
    with pytest.raises(ImageTooLargeError, match="decodes to 16 MB"):
        decode_image(rgba, max_pixels=4_000_000, max_bytes=10**8)
    floats = io.BytesIO()
    Image.new("F", (2000, 2000), 0.5).save(floats, "TIFF", compression="tiff_adobe_deflate")
    with pytest.raises(ImageTooLargeError, match="refused before decoding"):
        decode_image(floats.getvalue(), max_pixels=4_000_000, max_bytes=10**8)
    big = _png(Image.new("RGBA", (7000, 5000), (1, 2, 3, 4)))  # 35 MP, 140 MB decoded
    r = client.post("/v1/detect", headers=auth(keys[Role.operator]), content=big)
    assert r.status_code == 413 and "decodes to" in r.json()["detail"]


# --- item 10: decoder errors are bad input ----------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def inflating_pngs(data: Path) -> dict[str, bytes]:
    """A real face PNG with a zTXt, iTXt or iCCP chunk that inflates to 20 MB."""
    face = Image.open(data / "lfw10/Tony_Blair/Tony_Blair_0001.jpg").convert("RGB")
    png = _png(face)
    bomb = zlib.compress(b"\0" * (20 * 1024 * 1024), 9)
    chunks = {
        "zTXt": _chunk(b"zTXt", b"Comment\0\0" + bomb),
        "iTXt": _chunk(b"iTXt", b"Comment\0\1\0\0\0" + bomb),
        "iCCP": _chunk(b"iCCP", b"icc\0\0" + bomb),
    }
    return {name: png[:33] + c + png[33:] for name, c in chunks.items()}


def test_inflating_metadata_chunks_are_a_413(
    client: TestClient, keys: dict[Role, str], data: Path
) -> None:
    for name, png in inflating_pngs(data).items():
        with pytest.raises(ImageTooLargeError):
            decode_image(png, max_pixels=40_000_000, max_bytes=10**8)
        r = client.post("/v1/detect", headers=auth(keys[Role.operator]), content=png)
        assert r.status_code == 413, (name, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"


def test_inflating_metadata_chunk_is_exit_2_on_the_cli(tmp_path: Path, data: Path) -> None:
    from tests.cli_runner import run

    home = tmp_path / "home"
    assert run(home, "init", "--json").returncode == 0
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(inflating_pngs(data)["zTXt"])
    r = run(home, "detect", str(bomb), "--json")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "internal error" not in r.stderr


def test_raw_body_to_verify_is_a_422(client: TestClient, keys: dict[Role, str], data: Path) -> None:
    photo = (data / "people/joe_biden/1.jpg").read_bytes()
    r = client.post(
        f"/v1/verify?purpose={PURPOSE}", headers=auth(keys[Role.operator]), content=photo
    )
    assert r.status_code == 422, r.text
    assert "multipart fields image_a and image_b" in r.json()["detail"]


def test_malformed_multipart_is_a_422(client: TestClient, keys: dict[Role, str]) -> None:
    operator = auth(keys[Role.operator])
    bodies = {
        "no boundary": ("multipart/form-data", b"--x\r\n"),
        "unterminated": ("multipart/form-data; boundary=x", b"--x\r\nContent-Dispo"),
        "garbage": ("multipart/form-data; boundary=x", b"\x00\xff" * 100),
    }
    for name, (ctype, body) in bodies.items():
        r = client.post("/v1/detect", headers={**operator, "Content-Type": ctype}, content=body)
        assert r.status_code == 422, (name, r.text)


# --- item 7: every model route is rate limited --------------------------------------------


def test_every_model_route_is_rate_limited_per_key(core: Visage, keys: dict[Role, str]) -> None:
    subject = add_subject(core, "Rate Limit", make_consent("F-RL", [PURPOSE])).id
    operator, enroller = auth(keys[Role.operator]), auth(keys[Role.enroller])
    two = {"image_a": b"x", "image_b": b"y"}
    calls = {
        "detect": lambda c: c.post("/v1/detect", headers=operator, content=b"x"),
        "verify": lambda c: c.post(f"/v1/verify?purpose={PURPOSE}", headers=operator, files=two),
        "enrol": lambda c: c.post(
            f"/v1/subjects/{subject}/templates", headers=enroller, content=b"x"
        ),
    }
    for name, call in calls.items():
        app = create_app(core, model_per_minute=2, housekeeping=False, watch_cameras=False)
        with TestClient(app) as c:
            codes = [call(c).status_code for _ in range(3)]
            # enrol reports a rejected image with a 200; detect and verify answer 422
            assert codes[2] == 429 and all(400 <= c < 429 or c == 200 for c in codes[:2]), (
                name,
                codes,
            )
            r = call(c)
            assert r.json()["type"].endswith("rate-limited") and int(r.headers["Retry-After"]) >= 1


def test_rate_limit_is_a_setting(tmp_path: Path, shared_app: Visage) -> None:
    limited = make_app(tmp_path / "limited", rate_limit_per_minute=1, models=shared_app)
    key = auth(create_key(limited, Role.operator, [PURPOSE]).key)
    with TestClient(create_app(limited, housekeeping=False, watch_cameras=False)) as c:
        for route in ("/v1/detect", f"/v1/identify?purpose={PURPOSE}"):
            codes = [c.post(route, headers=key, content=b"x").status_code for _ in range(2)]
            assert codes == [422, 429], (route, codes)
    limited.close()


# --- item 12: /metrics and /readyz -------------------------------------------------------------


def test_metrics_need_an_auditor_or_admin_key(
    client: TestClient, keys: dict[Role, str], tmp_path: Path, shared_app: Visage
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth("vsg_not-a-key")).status_code == 401
    assert client.get("/metrics", headers=auth(keys[Role.operator])).status_code == 403
    for role in (Role.auditor, Role.admin):
        r = client.get("/metrics", headers=auth(keys[role]))
        assert r.status_code == 200 and "visage_requests_total" in r.text
    public = make_app(tmp_path / "public", metrics_public=True)
    with TestClient(create_app(public, housekeeping=False, watch_cameras=False)) as c:
        assert c.get("/metrics").status_code == 200
    public.close()


def test_readyz_shows_no_exception_text(tmp_path: Path) -> None:
    home = tmp_path / "secret-location-4711"
    broken = Visage(Settings(home=home))  # never initialised: no key, no database
    with TestClient(create_app(broken, housekeeping=False, watch_cameras=False)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    body = json.dumps(r.json())
    assert (
        "secret-location-4711" not in body and "Error" not in body and "/" not in r.json()["detail"]
    )
