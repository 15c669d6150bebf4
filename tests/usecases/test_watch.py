"""`visage watch` on the Hamilton clip, over a local HTTP stream that is killed and restarted,
and against bad sources."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import av
import pytest
from sqlalchemy import func, select

from tests.conftest import STAGE_PURPOSE, make_app, open_copy
from visage.core import Visage
from visage.errors import InputError
from visage.store.schema import EventRow, ReviewRow, TemplateRow
from visage.usecases import audit_log
from visage.usecases.watch import StopReason, WatchOptions, watch

PURPOSE = STAGE_PURPOSE


@pytest.fixture()
def app(tmp_path: Path, shared_app: Visage) -> Visage:
    """A data dir with nobody enrolled."""
    core = make_app(tmp_path / "home", models=shared_app)
    return core


@pytest.fixture()
def stage(
    tmp_path: Path, shared_app: Visage, stage_home: tuple[Path, dict[str, str]]
) -> Iterator[tuple[Visage, dict[str, str]]]:
    """A copy of the data dir with the two people of the clip enrolled, and their ids."""
    home, ids = stage_home
    core = open_copy(home, tmp_path / "stage-home", models=shared_app)
    yield core, ids
    core.close()


def _frames(clip: Path) -> int:
    with av.open(str(clip)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_watch_reports_the_enrolled_people(
    stage: tuple[Visage, dict[str, str]], stage_clip: Path, tmp_path: Path
) -> None:
    """To the end of the input (the clip's first seconds, where both people appear)."""
    app, ids = stage
    recording = tmp_path / "rec.mp4"
    report = watch(app, str(stage_clip), PURPOSE, WatchOptions(camera="stage", record=recording))
    total = _frames(stage_clip)
    assert total > 90 and report.frames == total
    assert report.stopped is StopReason.end_of_input
    assert {e.subject_id for e in report.events} == set(ids)
    for e in report.events:
        assert e.camera == "stage" and e.best_score >= app.threshold and e.frames >= 1
        assert e.ended_at >= e.started_at
    with app.store.session() as session:
        stored = list(session.scalars(select(EventRow)))
    assert {e.subject_id for e in stored} == set(ids)
    assert all(e.camera == "stage" and e.source == "camera" for e in stored)
    entry = audit_log.entries(app, operation="watch")[-1]
    assert entry.details["events"] == len(report.events) and entry.details["frames"] == total
    with av.open(str(recording)) as container:
        assert container.streams.video[0].codec_context.width == 640
    assert recording.stat().st_size > 10_000


def test_with_nobody_enrolled_nothing_biometric_is_stored(
    app: Visage, stage_clip: Path, shared_app: Visage
) -> None:
    report = watch(app, str(stage_clip), PURPOSE)
    assert report.events == [] and report.tracks > 0
    with app.store.session() as session:
        for table in (EventRow, ReviewRow, TemplateRow):
            assert session.scalar(select(func.count()).select_from(table)) == 0
    # Scan every file of the data dir for the embeddings of faces on the clip.
    from visage.media.video import VideoReader

    needles = []
    with VideoReader(str(stage_clip)) as reader:
        for frame in reader.frames():
            if frame.index % 15 == 0:
                for face in shared_app.analyzer.analyze(frame.pixels):
                    assert face.embedding is not None
                    needles.append(face.embedding.astype("<f4").tobytes()[:32])
    assert needles
    for path in app.home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(n in content for n in needles), path
    entry = audit_log.entries(app, operation="watch")[-1]
    assert entry.details["events"] == 0 and entry.details["bystander_tracks"] == report.tracks


SERVER = """
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
data = open(sys.argv[2], "rb").read()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        for i in range(0, len(data), 4096):  # a little slower than real time
            self.wfile.write(data[i:i + 4096])
            self.wfile.flush()
            time.sleep(0.06)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _to_mpegts(src: Path, dst: Path) -> None:
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        stream = inp.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = target
            out.mux(packet)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_stream_reconnects_after_the_server_is_killed(
    stage: tuple[Visage, dict[str, str]], data: Path, tmp_path: Path
) -> None:
    app, ids = stage
    ts = tmp_path / "clip.ts"
    _to_mpegts(data / "video/hamilton_clip.mp4", ts)
    port = _free_port()

    def serve() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(ts)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("test server did not start")

    server = serve()
    frames: list[int] = []
    stop = threading.Event()
    result: dict[str, object] = {}

    def run() -> None:
        result["report"] = watch(
            app,
            f"http://127.0.0.1:{port}/clip.ts",
            PURPOSE,
            WatchOptions(camera="http", backoff_s=0.2, timeout_s=5),
            stop=stop,
            progress=frames.append,
        )

    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while len(frames) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(frames) >= 40, "the stream never played"
        os.kill(server.pid, signal.SIGKILL)  # the camera goes away mid-stream
        server.wait()
        # What was already buffered is still played; wait until the frames stop coming.
        deadline = time.monotonic() + 60
        last, still_since = len(frames), time.monotonic()
        while time.monotonic() - still_since < 1.5 and time.monotonic() < deadline:
            time.sleep(0.05)
            if len(frames) != last:
                last, still_since = len(frames), time.monotonic()
        before = len(frames)
        assert before < 275, "the whole clip was buffered before the kill; nothing was tested"
        server = serve()  # and comes back
        deadline = time.monotonic() + 60
        while len(frames) < before + 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(frames) >= before + 40, "watch did not carry on after the restart"
    finally:
        stop.set()
        worker.join(timeout=60)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
    report = result["report"]
    assert report.reconnects >= 1  # type: ignore[attr-defined]
    assert report.stopped is StopReason.stop_requested  # type: ignore[attr-defined]
    assert {e.subject_id for e in report.events} <= set(ids)  # type: ignore[attr-defined]


def test_bad_sources_fail_clearly_and_fast(app: Visage, data: Path, tmp_path: Path) -> None:
    not_video = tmp_path / "x.mp4"
    not_video.write_text("hello " * 1000)
    port = _free_port()  # nothing listens there
    for source in (str(not_video), str(tmp_path / "missing.mkv"), f"http://127.0.0.1:{port}/a"):
        started = time.monotonic()
        with pytest.raises(InputError):
            watch(app, source, PURPOSE, WatchOptions(timeout_s=3))
        assert time.monotonic() - started < 15


class _AuditDown(Visage):
    """A core whose audit log cannot be written (the store refuses the entry)."""

    def audit(self, *args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("audit log unavailable")


def test_an_audit_failure_never_hides_the_error_of_the_run(
    app: Visage, data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = _AuditDown(app.settings)
    broken._analyzer = app.analyzer
    with pytest.raises(InputError):  # the run's own error, not the audit's
        watch(broken, str(tmp_path / "missing.mkv"), PURPOSE)
    assert "could not be written" in caplog.text
    # A run that went well but could not be audited must not look ok.
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        watch(broken, str(data / "video/hamilton_clip.mp4"), PURPOSE, WatchOptions(max_frames=1))
    broken.close()


def test_watchlist_purpose_queues_reviews_instead_of_events(
    stage: tuple[Visage, dict[str, str]], stage_clip: Path
) -> None:
    from visage.usecases.profile import ProfileChanges, set_profile
    from visage.usecases.review import probe

    app, ids = stage
    set_profile(app, ProfileChanges(watchlist_purposes=[PURPOSE]))
    # The first second is enough: Lin-Manuel Miranda is recognised in the first frames
    # (see stage_clip), and one recognised track is what the queueing claims need.
    report = watch(app, str(stage_clip), PURPOSE, WatchOptions(camera="stage", max_frames=30))
    assert report.events and all(e.review_id for e in report.events)
    # Blind until two reviewers confirm: the report names nobody and gives no score.
    assert all(e.subject_id is None and e.best_score is None for e in report.events)
    with app.store.session() as session:
        assert session.scalar(select(func.count()).select_from(EventRow)) == 0
        reviews = list(session.scalars(select(ReviewRow)))
    assert {r.id for r in reviews} == {e.review_id for e in report.events}
    assert {r.subject_id for r in reviews} <= set(ids)
    assert all(r.source == "camera" and r.camera == "stage" for r in reviews)
    crop = probe(app, reviews[0].id)
    assert crop[:2] == b"\xff\xd8"
