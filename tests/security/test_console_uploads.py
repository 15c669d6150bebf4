"""The console's forms are read like the API's uploads: in memory, under a byte budget, as the
body arrives. The attacks: a > 1 MB photo (which ``request.form()`` would spool to the temp
dir) posted to the console's ``/identify`` and ``/subjects/{id}/enrol``, a photo over the
limit, endless chunked bodies, and an anonymous client streaming an endless sign-in form.

Each runs against a real data dir, real photos and the real console app; the temp dir is
watched with the audit hook of :mod:`tests.security.test_uploads`, which sees every file
opened under it, unnamed ``O_TMPFILE`` files included.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import make_app
from tests.security.test_uploads import _WATCHED, _WRITES, _post_chunked
from tests.web.conftest import PURPOSE, add_users, page_csrf, sign_in
from visage.api.uploads import FORM_TEXT_BUDGET, FRAMING
from visage.core import Visage
from visage.usecases.subjects import add_subject, make_consent
from visage.web.app import create_server
from visage.web.session import SESSION_COOKIE

LIMIT = 3_000_000
"""``max_bytes`` of this data dir: the photo below fits, a padded copy does not."""

CHUNK = 16_384
BOUNDARY = "XyZ"


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    app = make_app(tmp_path_factory.mktemp("console-uploads"), max_bytes=LIMIT, models=shared_app)
    add_users(app)
    yield app
    app.close()


@pytest.fixture(scope="module")
def subject(core: Visage) -> str:
    return add_subject(core, "Shea Whigham", make_consent("form-whigham", [PURPOSE])).id


@pytest.fixture(scope="module")
def app(core: Visage) -> FastAPI:
    return create_server(core, housekeeping=False, watch_cameras=False)


@pytest.fixture(scope="module")
def olga(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield sign_in(client, "olga")


@pytest.fixture(scope="module")
def enzo(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield sign_in(client, "enzo")


@pytest.fixture(scope="module")
def photo(data: Path) -> bytes:
    """A real portrait larger than Starlette's 1 MB in-memory spool, under :data:`LIMIT`."""
    found = (data / "people/shea_whigham/1.jpg").read_bytes()
    assert 1024 * 1024 < len(found) < LIMIT - FRAMING
    return found


@pytest.fixture()
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temp dir for this test, watched: every file opened under it is in ``_WRITES``."""
    watched = tmp_path / "tmp"
    watched.mkdir()
    monkeypatch.setenv("TMPDIR", str(watched))
    monkeypatch.setattr(tempfile, "tempdir", str(watched))
    _WRITES.clear()
    _WATCHED.append(watched)
    try:
        yield watched
    finally:
        _WATCHED.clear()


def assert_untouched(spool: Path) -> None:
    assert _WRITES == [], _WRITES
    leftovers = list(spool.rglob("*"))
    assert leftovers == []


def _session_headers(client: TestClient, ctype: str) -> dict[str, str]:
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie, "the client is signed in"
    return {"Cookie": f'{SESSION_COOKIE}="{cookie}"', "Content-Type": ctype}


def _endless_file(field: str, total: int) -> Iterator[bytes]:
    """A multipart body whose one file part goes on for ``total`` bytes (so that a server
    without a limit answers in the end instead of hanging the test)."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0'
    ).encode("latin-1")
    for _ in range(total // CHUNK):
        yield b"\x00" * CHUNK


def _endless_text(field: str, total: int) -> Iterator[bytes]:
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n'.encode()
    for _ in range(total // CHUNK):
        yield b"a" * CHUNK


# --- a > 1 MB photo still works, and never reaches the temp dir -----------------------------


def test_large_photo_is_identified_without_touching_the_temp_dir(
    olga: TestClient, photo: bytes, spool: Path
) -> None:
    response = olga.post(
        "/identify",
        data={"purpose": PURPOSE, "csrf": page_csrf(olga, "/identify")},
        files={"image": ("portrait.jpg", photo, "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    assert 'src="data:image/jpeg;base64,' in response.text, "the photo was really processed"
    assert_untouched(spool)


def test_large_photo_is_enrolled_without_touching_the_temp_dir(
    enzo: TestClient, subject: str, photo: bytes, spool: Path
) -> None:
    response = enzo.post(
        f"/subjects/{subject}/enrol",
        data={"csrf": page_csrf(enzo, f"/subjects/{subject}")},
        files=[("photos", ("portrait.jpg", photo, "image/jpeg"))],
    )
    assert response.status_code == 200, response.text
    assert "1 of 1 photos enrolled." in response.text
    assert_untouched(spool)


# --- over the limit: 413, the console's error page, read no further than the limit -----------


@pytest.mark.parametrize("who", ["olga", "enzo"])
def test_photo_over_the_limit_is_refused_with_the_error_page(
    who: str,
    request: pytest.FixtureRequest,
    subject: str,
    photo: bytes,
    spool: Path,
) -> None:
    client: TestClient = request.getfixturevalue(who)
    padded = photo + b"\x00" * (LIMIT - len(photo) + 1)  # still a valid JPEG, one byte over
    if who == "olga":
        path, csrf, files = "/identify", page_csrf(client, "/identify"), {"image": padded}
    else:
        path, csrf = f"/subjects/{subject}/enrol", page_csrf(client, f"/subjects/{subject}")
        files = {"photos": padded}
    response = client.post(path, data={"purpose": PURPOSE, "csrf": csrf}, files=files)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert f"larger than the limit of {LIMIT} bytes" in response.text
    assert "Traceback" not in response.text
    assert_untouched(spool)


@pytest.mark.parametrize("who", ["olga", "enzo"])
def test_endless_chunked_upload_is_cut_off_at_the_limit(
    who: str,
    request: pytest.FixtureRequest,
    app: FastAPI,
    subject: str,
    photo: bytes,
    spool: Path,
) -> None:
    client: TestClient = request.getfixturevalue(who)
    route, field = (
        ("/identify", "image") if who == "olga" else (f"/subjects/{subject}/enrol", "photos")
    )
    headers = _session_headers(client, f"multipart/form-data; boundary={BOUNDARY}")
    status, pulled = _post_chunked(app, route, headers, _endless_file(field, 4 * LIMIT))
    assert status == 413
    # Read up to the file limit (it was streamed, not refused for another reason), then no
    # further than the chunk that crossed it.
    assert LIMIT <= pulled <= LIMIT + FRAMING + CHUNK, pulled
    assert_untouched(spool)


# --- anonymous sign-in: a small text budget, and no file part at all -------------------------


@pytest.mark.parametrize("kind", ["multipart", "urlencoded"])
def test_anonymous_endless_sign_in_is_cut_off_at_the_text_budget(
    kind: str, app: FastAPI, spool: Path
) -> None:
    if kind == "multipart":
        ctype = f"multipart/form-data; boundary={BOUNDARY}"
        body = _endless_text("password", 100 * FORM_TEXT_BUDGET)
    else:
        ctype = "application/x-www-form-urlencoded"
        body = iter([b"username=ada&password=", *(b"a" * CHUNK for _ in range(400))])
    status, pulled = _post_chunked(app, "/sign-in", {"Content-Type": ctype}, body)
    assert status == 413
    assert pulled <= FORM_TEXT_BUDGET + CHUNK, pulled
    assert_untouched(spool)


def test_anonymous_sign_in_takes_no_file(app: FastAPI, spool: Path) -> None:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    status, pulled = _post_chunked(app, "/sign-in", headers, _endless_file("username", 4 * LIMIT))
    assert status == 422  # refused at the file part's headers, not when the budget runs out
    assert pulled <= 2 * CHUNK, pulled
    assert_untouched(spool)


def test_over_budget_sign_in_gets_the_console_error_page(app: FastAPI) -> None:
    with TestClient(app, base_url="http://testserver") as anonymous:
        form = anonymous.get("/sign-in")
        response = anonymous.post(
            "/sign-in",
            data={"username": "ada", "password": "x" * FORM_TEXT_BUDGET, "csrf": "whatever"},
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in form.cookies.items())},
        )
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("text/html")
        assert "Traceback" not in response.text
        # Declared over the budget: refused before a byte of the body was read.
        assert f"more than the limit of {FORM_TEXT_BUDGET}" in response.text
