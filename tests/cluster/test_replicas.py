"""Two ``visage serve`` processes on one PostgreSQL database behave as one system (issue 15).

Real processes, a real PostgreSQL server (:mod:`tests.pg`, whatever ``--store`` says) and the
recommended layout of ``docs/deployment.md``: one data dir on a shared volume (master key,
``keys/``, signing key) and ``VISAGE_DATABASE_URL``. A client alternates between the two:
what one replica changes (an enrolment, a withdrawal, an erasure, a review decision) the
other sees on its very next request; a camera is watched by exactly one replica and taken
over within 15 s when that replica is killed (``kill -9``) mid-traffic, with no event of the
overlap written twice; nothing the dead replica acknowledged is lost and the audit chain,
written by both, verifies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_serve import _free_port
from tests.conftest import make_app
from tests.pg import pg_server

STAGE, WATCH = "stage", "watchlist"
TAKEOVER_S = 15.0


class Replica:
    """One ``visage serve`` process on the shared data dir and database."""

    def __init__(self, home: Path, url: str, **env: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
        self.env.update(VISAGE_HOME=str(home), VISAGE_DATABASE_URL=url, COLUMNS="200", **env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visage", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        # One client for the test's calls: a client per call costs an SSL context (~25 ms
        # of CPU reading the CA bundle) even for plain http.
        self.http = httpx.Client(timeout=60)

    def read_until(self, marker: str, timeout_s: float = 120) -> str:
        """The first stdout line holding ``marker`` (read with a deadline)."""
        assert self.proc.stdout is not None
        found: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in iter(self.proc.stdout.readline, ""):
                self.lines.append(line)
                if marker in line:
                    found.append(line.strip())
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout_s)
        assert found, f"no {marker!r} in {self.lines}"
        return found[0]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError("the replica did not become ready")

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return self.http.request(method, self.base + path, headers=headers, **kwargs)

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[Replica, Replica, str, Path, str]]:
    """Replicas A and B on one database and one data dir; yields them, the first admin key,
    the data dir and the database URL. A runs ``init`` first (key check, signing-key pin,
    first admin); B starts once that is done."""
    url, home = pg_server().database("replicas"), tmp_path / "home"
    a = Replica(home, url)
    try:
        admin = a.read_until("admin API key").split()[-1]
        b = Replica(home, url)
        try:
            a.wait_ready()
            b.wait_ready()
            yield a, b, admin, home, url
        finally:
            b.stop()
    finally:
        a.stop()


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


def _names(r: httpx.Response) -> set[str]:
    return {c["name"] for f in _ok(r)["faces"] for c in f["candidates"]}


def _wait(check: Callable[[], Any], timeout_s: float, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every_s)
    raise AssertionError(f"not within {timeout_s} s")


def test_two_replicas_are_one_system(
    cluster: tuple[Replica, Replica, str, Path, str],
    data: Path,
    http_clip: str,
) -> None:
    a, b, admin, _home, _url = cluster
    people = data / "people"

    def key(role: str, owner: str, purposes: list[str] | None = None) -> str:
        body = {"role": role, "owner": owner, "purposes": purposes or []}
        return str(_ok(a.call("POST", "/v1/keys", admin, json=body), 201)["key"])

    _ok(a.call("PATCH", "/v1/profile", admin, json={"dpia_ref": "DPIA-REPLICAS-2026"}))
    _ok(b.call("PATCH", "/v1/profile", admin, json={"watchlist_purposes": [WATCH]}))
    enroller, auditor = key("enroller", "Eve"), key("auditor", "Aud")
    operator = key("operator", "Otto", [STAGE, WATCH])
    alice, bob = key("reviewer", "Alice"), key("reviewer", "Bob")

    def subject(on: Replica, name: str, ref: str, purposes: list[str]) -> str:
        body = {"name": name, "consent": {"reference": ref, "purposes": purposes}}
        return str(_ok(on.call("POST", "/v1/subjects", enroller, json=body), 201)["id"])

    def enrol(on: Replica, sid: str, image: Path) -> list[str]:
        r = on.call("POST", f"/v1/subjects/{sid}/templates", enroller, content=image.read_bytes())
        return [e["template_id"] for e in _ok(r)["enrolled"]]

    def identify(on: Replica, image: Path, purpose: str = STAGE) -> httpx.Response:
        files = {"image": (image.name, image.read_bytes())}
        return on.call("POST", f"/v1/identify?purpose={purpose}", operator, files=files)

    # Enrolled on A: found on B at once (its index checks the store's version per search).
    biden = subject(a, "Biden", "F-1", [STAGE])
    assert enrol(a, biden, people / "joe_biden/1.jpg")
    assert "Biden" in _names(identify(b, people / "joe_biden/2.jpg"))
    assert "Biden" in _names(identify(a, people / "joe_biden/2.jpg"))
    # Withdrawn on B: gone on A at once (consent token re-stamped by the triggers).
    _ok(b.call("POST", f"/v1/subjects/{biden}/consents/F-1/withdraw", enroller))
    assert "Biden" not in _names(identify(a, people / "joe_biden/2.jpg"))
    # Enrolled on B, erased on A: no replica answers with the erased person.
    obama = subject(b, "Obama", "F-2", [STAGE])
    assert enrol(b, obama, people / "barack_obama/1.jpg")
    assert "Obama" in _names(identify(a, people / "barack_obama/2.jpg"))
    _ok(a.call("DELETE", f"/v1/subjects/{obama}", enroller))
    for replica in (b, a):
        assert "Obama" not in _names(identify(replica, people / "barack_obama/2.jpg"))
    assert b.call("GET", f"/v1/subjects/{obama}", enroller).status_code == 404

    # Two-person review, one reviewer on each replica.
    lin = subject(a, "Lin", "F-3", [STAGE, WATCH])
    lin_images = sorted((people / "lin_manuel_miranda").iterdir())
    for i, image in enumerate(lin_images):
        enrol((a, b)[i % 2], lin, image)
    r = identify(b, lin_images[0], WATCH)
    [pending] = [f for f in _ok(r)["faces"] if f["status"] == "pending_review"]
    rid = pending["review_id"]
    _ok(a.call("POST", f"/v1/reviews/{rid}/confirm", alice))
    assert b.call("POST", f"/v1/reviews/{rid}/confirm", alice).status_code >= 400  # not twice
    _ok(b.call("POST", f"/v1/reviews/{rid}/confirm", bob))
    outcome = _ok(a.call("GET", f"/v1/reviews/{rid}/outcome", operator))
    assert outcome["status"] == "confirmed" and outcome.get("subject_id") == lin, outcome

    # A camera: created on A, watched by A only.
    cam = {"name": "stage-cam", "source": http_clip, "purpose": STAGE}
    cid = _ok(a.call("POST", "/v1/cameras", admin, json=cam), 201)["id"]

    def state(on: Replica) -> str:
        [c] = [c for c in _ok(on.call("GET", "/v1/cameras", admin)) if c["id"] == cid]
        return str(c["status"]["state"])

    def events() -> list[dict[str, Any]]:
        return list(_ok(b.call("GET", "/v1/events?camera=stage-cam&limit=1000", operator)))

    _wait(lambda: state(a) in ("running", "retrying"), 20)
    _wait(lambda: state(b) == "elsewhere", 2 * TAKEOVER_S)
    _wait(events, 90, 0.5)

    # Traffic on both replicas; A is killed in the middle of it.
    traffic = subject(b, "Traffic", "F-4", [STAGE])
    images = sorted((people / "kate_siegel").iterdir()) + sorted((people / "paul_rudd").iterdir())
    acknowledged: list[str] = []
    killed_at: datetime | None = None
    for i, image in enumerate(images * 3):
        if i == 3:
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait()
            killed_at = datetime.now(UTC)
            killed = time.monotonic()
            # A is dead: its events are final; B does not watch yet (A's lease holds).
            by_a = {e["id"]: e for e in events()}
            assert state(b) == "elsewhere"
        on = (a, b)[i % 2]
        with contextlib.suppress(httpx.HTTPError):
            r = on.call(
                "POST", f"/v1/subjects/{traffic}/templates", enroller, content=image.read_bytes()
            )
            if r.status_code == 200:
                acknowledged += [e["template_id"] for e in r.json()["enrolled"]]
    assert killed_at is not None and acknowledged

    # B takes the camera over within 15 s of the kill, after A's lease lapsed.
    _wait(lambda: state(b) in ("running", "retrying"), TAKEOVER_S + 5, 0.25)
    took = time.monotonic() - killed
    assert took <= TAKEOVER_S, took
    by_b = _wait(lambda: [e for e in events() if e["id"] not in by_a], 90, 0.5)
    seen = {e["id"]: e for e in events()}
    # No event of the overlap twice: A's events were not written again or touched after the
    # kill, and B's (all begun after it, once A's lease had lapsed) repeat none of them.
    assert {i: seen[i] for i in by_a} == by_a
    assert all(_at(e["started_at"]) > killed_at for e in by_b), by_b
    firsts = [(e["subject_id"], e["started_at"]) for e in seen.values()]
    assert len(set(firsts)) == len(firsts)

    # Nothing acknowledged is lost, and the chain written by both replicas verifies.
    templates = _ok(b.call("GET", f"/v1/subjects/{traffic}/templates", enroller))
    assert set(acknowledged) <= {t["id"] for t in templates}
    audited = _ok(b.call("GET", "/v1/audit?operation=enroll&limit=10000", auditor))
    audited_ids = {e["details"].get("template_id") for e in audited}
    assert set(acknowledged) <= audited_ids
    report = _ok(b.call("GET", "/v1/audit/verify", auditor))
    assert report["ok"], report


def test_a_replica_with_another_signing_key_refuses_to_start(tmp_path: Path) -> None:
    url, home = pg_server().database("replicas"), tmp_path / "home"
    # The first replica's data dir and database, initialised in this process (a process
    # start costs seconds; the refusal below is the real process the claim is about).
    make_app(home, dpia=False, database_url=url).close()
    other = Replica(tmp_path / "other-home", url, VISAGE_MASTER_KEY=_master_of(home))
    code = other.proc.wait(timeout=120)
    stderr = other.proc.stderr.read() if other.proc.stderr else ""
    assert code != 0 and "Traceback" not in stderr
    assert "signing key" in stderr and "not the key pinned" in stderr, stderr


def _master_of(home: Path) -> str:
    from visage.store import crypto

    return crypto.read_key_file(home / crypto.KEY_FILE).hex()


def _at(value: str) -> datetime:
    found = datetime.fromisoformat(value)
    return found if found.tzinfo else found.replace(tzinfo=UTC)
