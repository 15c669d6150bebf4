"""Shared fixtures: the real test images in ../shared/faces and real SQLite data dirs."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from visage.config import Settings
from visage.core import Visage
from visage.usecases.enroll import enroll
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.setup import init
from visage.usecases.subjects import add_subject, make_consent

REPO = Path(__file__).resolve().parent.parent

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


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


TEST_DPIA = "DPIA-TEST-2026-01"


def make_app(
    home: Path, *, dpia: bool = True, models: Visage | None = None, **overrides: object
) -> Visage:
    """An initialised data dir; with ``dpia`` its profile allows 1:N identification. With
    ``models``, the new core reuses that core's loaded models instead of loading its own."""
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
