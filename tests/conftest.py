"""Shared fixtures: the real test images in ../shared/faces and real data dirs.

``--store=sqlite`` (default): each data dir has its SQLite file. ``--store=postgresql``: each
data dir made by :func:`make_app` gets a fresh database on the session's real PostgreSQL
server (:mod:`tests.pg`); reopening the same data dir reopens the same database, and
:func:`open_copy` copies the database with the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import pytest

from tests import detection_memo
from tests.pg import (
    STORES,
    copy_database,
    database_url_of,
    set_store_kind,
    store_kind,
    use_sqlite,
)
from visage.config import Settings
from visage.core import Visage
from visage.usecases.enroll import enroll
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.setup import init
from visage.usecases.subjects import add_subject, make_consent

# Under pytest-xdist, workers share the cores: OpenMP threads (FAISS's index builds) that
# spin-wait after a parallel region would take them from the other worker. Read by libgomp
# when FAISS is first imported, which no module above does.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

detection_memo.install()

# Tests must not pick up the developer's own data dir or key.
for _name in [n for n in os.environ if n.startswith("VISAGE_") and n != "VISAGE_TEST_DATA"]:
    del os.environ[_name]


def _find_data() -> Path:
    candidates = [os.environ.get("VISAGE_TEST_DATA"), REPO.parent / "shared" / "faces"]
    for c in candidates:
        if c and (Path(c) / "lfw10" / "pairs.csv").is_file():
            return Path(c)
    raise RuntimeError(
        "test images not found: set VISAGE_TEST_DATA or put shared/faces beside the repo"
    )


DATA = _find_data()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=STORES,
        default="sqlite",
        help="the store every data dir of make_app uses (PostgreSQL: a real server)",
    )


def pytest_configure(config: pytest.Config) -> None:
    set_store_kind(config.getoption("--store"))
    config.addinivalue_line(
        "markers", "slow: in the full suite (make test) only, not in the quick one (make check)"
    )


SLOW = {
    "media/test_masks.py": "dlib judges every frame of two clips in every mask mode",
    "gallery/test_quantized.py": "trains a quantized index on 60,000 vectors",
    "cluster/test_replicas.py": "two server processes on one PostgreSQL, a lease takeover",
    "web/browser": "a real Chromium drives the console",
    "api/test_schemathesis.py": "property-based: every route against its OpenAPI schema",
    "vision/test_onnx_embedder.py": "dlib's own ResNet, built without BLAS, on every face",
    "cluster/test_ray.py": "a real Ray cluster",
    "media/test_video.py": "HOG judges the Hamilton clip",
    "security/test_fuzz.py": "property-based: generated corrupt uploads",
}
"""What ``make check`` (lint and the quick suite, under 4 minutes on 2 cores) leaves to
``make test``, the full suite CI runs: the tests that need a browser, a cluster or
minutes of CPU. Paths under ``tests/``, longest first; each is marked ``slow``, and the
full suite starts with them in this order (pytest-xdist hands a worker its next module in
collection order: a long module started last would keep one core busy while the other
waits)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [p for p in SLOW if not (TESTS / p).exists()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py SLOW names paths that are gone: {missing}")
    rank = {item: len(SLOW) for item in items}
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        where = item.path.relative_to(TESTS).as_posix()
        for i, path in enumerate(SLOW):
            if where == path or where.startswith(path + "/"):
                item.add_marker(pytest.mark.slow)
                rank[item] = i
    items.sort(key=rank.__getitem__)  # stable: a module's tests keep their order


@pytest.fixture(autouse=True)
def _database_of_the_default_home(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL runs: ``VISAGE_DATABASE_URL`` names the database of the test's data dir
    ``tmp_path / "home"``, so that a core built from plain ``Settings`` (a reopening, a CLI
    call) finds the same store as :func:`make_app` gave that data dir."""
    if store_kind() != "postgresql" or "tmp_path" not in request.fixturenames:
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")
    url = database_url_of(tmp_path / "home")
    assert url is not None
    monkeypatch.setenv("VISAGE_DATABASE_URL", url)


@pytest.fixture()
def sqlite_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path / "home"`` as a SQLite data dir on either run: for a test about SQLite's
    own file (its bytes on disk, a copy of ``visage.db``, a raw ``sqlite3`` edit)."""
    home = tmp_path / "home"
    use_sqlite(home)
    monkeypatch.delenv("VISAGE_DATABASE_URL", raising=False)
    return home


@pytest.fixture(name="store_kind")
def store_kind_fixture() -> str:
    """``sqlite`` or ``postgresql``: for a test whose claim differs between the stores."""
    return store_kind()


@pytest.fixture()
def store_url(tmp_path: Path) -> str | None:
    """The ``database_url`` of a test's own store (None: SQLite in ``tmp_path``)."""
    return database_url_of(tmp_path)


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


@contextlib.contextmanager
def serve_over_http(path: Path) -> Iterator[str]:
    """``path`` served over real HTTP with byte ranges, as an IP camera's file would be (a
    path on the server is not an allowed camera source); yields its URL."""
    body = path.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            start, end = 0, len(body) - 1
            wanted = self.headers.get("Range", "")
            if wanted.startswith("bytes="):
                first, _, last = wanted[6:].partition("-")
                start, end = int(first or 0), int(last) if last else end
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body[start : end + 1])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def http_clip(data: Path) -> Iterator[str]:
    """The Hamilton clip over real HTTP (see :func:`serve_over_http`)."""
    with serve_over_http(data / "video/hamilton_clip.mp4") as url:
        yield url


TEST_DPIA = "DPIA-TEST-2026-01"


def make_app(
    home: Path, *, dpia: bool = True, models: Visage | None = None, **overrides: object
) -> Visage:
    """An initialised data dir; with ``dpia`` its profile allows 1:N identification. With
    ``models``, the new core reuses that core's loaded models instead of loading its own.
    On ``--store=postgresql`` the data dir's store is its own database (the same one each
    time ``home`` is opened), unless ``database_url`` is given."""
    if "database_url" not in overrides:
        overrides["database_url"] = database_url_of(home)
    app = Visage(Settings(home=home, **overrides))  # type: ignore[arg-type]
    if models is not None:
        app._analyzer = models.analyzer
    init(app)
    if dpia:
        set_profile(app, ProfileChanges(dpia_ref=TEST_DPIA))
    return app


@pytest.fixture(scope="session")
def shared_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visage]:
    """An initialised data dir with nobody enrolled; models loaded once for the session."""
    app = make_app(tmp_path_factory.mktemp("visage-home"))
    yield app
    app.close()


@pytest.fixture()
def fresh_app(tmp_path: Path, shared_app: Visage) -> Iterator[Visage]:
    """A new empty data dir that reuses the session's loaded models."""
    app = make_app(tmp_path / "home", models=shared_app)
    yield app
    app.close()


PEOPLE_PURPOSE = "access-control"


@pytest.fixture(scope="session")
def enrolled_app(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    """Everyone in people/ enrolled with a consent record for ``access-control``."""
    app = make_app(tmp_path_factory.mktemp("visage-enrolled"), models=shared_app)
    for folder in sorted(p for p in (DATA / "people").iterdir() if p.is_dir()):
        consent = make_consent(f"form-{folder.name}", [PEOPLE_PURPOSE])
        subject_id = add_subject(app, folder.name, consent).id
        report = enroll(app, subject_id, sorted(folder.iterdir()))
        assert report.enrolled, f"nothing enrolled for {folder.name}: {report.rejected}"
    yield app
    app.close()


def clip_head(clip: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``clip`` in ``dst``, packets copied as they are (no
    re-encoding): the frames decoded from it are the clip's own first frames."""
    with av.open(str(clip)) as src, av.open(str(dst), "w") as out:
        copies = {s.index: out.add_stream_from_template(s) for s in src.streams}
        starts = {s.index: s.start_time or 0 for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue  # the demuxer's flush packets
            if (packet.dts - starts[packet.stream.index]) * packet.time_base >= seconds:
                continue  # everything after the cut
            packet.stream = copies[packet.stream.index]
            out.mux(packet)
    return dst


STAGE_PURPOSE = "stage-door"
STAGE_PEOPLE = {"lin_manuel_miranda": "Lin-Manuel Miranda", "alex_lacamoire": "Alex Lacamoire"}
"""The two people of the Hamilton clip (folder in people/: display name)."""


@pytest.fixture(scope="session")
def stage_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3.5 s (105 frames) of the Hamilton clip: Lin-Manuel Miranda is recognised
    from its first frames, Alex Lacamoire around frame 80. For tests whose claim does not
    need all 275 frames."""
    folder = tmp_path_factory.mktemp("stage-clip")
    return clip_head(DATA / "video/hamilton_clip.mp4", folder / "stage.mp4", 3.5)


@pytest.fixture(scope="session")
def stage_home(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage
) -> tuple[Path, dict[str, str]]:
    """A closed data dir with the two people of the clip enrolled for ``stage-door``, and
    their ids (subject id: folder name). Open a copy of it with :func:`open_copy`."""
    home = tmp_path_factory.mktemp("stage") / "home"
    app = make_app(home, models=shared_app)
    ids = {}
    for folder, name in STAGE_PEOPLE.items():
        sid = add_subject(app, name, make_consent(f"F-{folder}", [STAGE_PURPOSE])).id
        report = enroll(app, sid, sorted((DATA / "people" / folder).iterdir()))
        assert report.enrolled, f"nothing enrolled for {folder}: {report.rejected}"
        ids[sid] = folder
    app.close()
    return home, ids


def open_copy(home: Path, dst: Path, *, models: Visage, **overrides: object) -> Visage:
    """A copy of the closed data dir ``home`` in ``dst`` of the test's own, opened with the
    settings ``overrides`` and ``models``' loaded models (as :func:`make_app` does). On
    PostgreSQL runs the data dir's database is copied too."""
    shutil.copytree(home, dst)
    copy_database(home, dst)
    return make_app(dst, models=models, **overrides)


class Receiver:
    """A real webhook receiver on localhost: records the headers and body of every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self) -> list[dict[str, object]]:
        """The JSON bodies received so far, in order."""
        return [json.loads(body) for _, body in list(self.received)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="session", autouse=True)
def _cheapest_password_hashing() -> Iterator[None]:
    """Passwords hashed with argon2's cheapest parameters (still argon2id) in this process:
    a sign-in costs microseconds instead of ~0.3 s. The tests that are about the production
    parameters (stored hash, timing) switch back with
    ``hashing_parameters(PRODUCTION_HASHING)``."""
    from argon2.profiles import CHEAPEST

    from visage.governance.users import hashing_parameters

    with hashing_parameters(CHEAPEST):
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Remembered detections for the test and its fixtures, unless it is the detector's own
    test (:mod:`tests.detection_memo`); set before any fixture of the test is built."""
    detection_memo.set_enabled(detection_memo.uses_memo(item.path, TESTS))
