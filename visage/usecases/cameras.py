"""Cameras as a resource, and the supervisor that keeps one watcher thread per camera.

The supervisor belongs to the core (:func:`supervisor`: one per core, whichever door asks),
so every door sees the same cameras and statuses; it watches cameras only once started —
the server starts it for its lifetime — and stops with the core. Each enabled camera then
gets its own worker running :func:`visage.usecases.watch.watch`; a worker that fails (the
stream cannot be opened, the profile refuses live 1:N) is restarted with backoff, and its
state is visible in the camera's status. Adding, enabling, disabling or deleting a camera
takes effect at once in a running supervisor.

A halt (:mod:`visage.usecases.halt`: ``all``, ``camera:<name>`` or ``purpose:<its purpose>``),
set by any door or process, stops a running worker's watch within about a second and keeps
the source closed; the status says ``halted`` (and which halt). The worker reads the halts
once a second while halted, and starts watching again when an admin resumes.

A source must pass the allow-list of :mod:`visage.media.sources` (network cameras and local
video devices only, never a path or another FFmpeg protocol). Sources may carry credentials
(``rtsp://user:pass@…``, ``?token=…``): the URL is stored sealed under a key derived from the
master key, and ``cameras.source`` keeps only the masked form that listings, errors, logs
and audit entries show. A row written before sealing existed is sealed and masked the next
time the cameras are read (:func:`seal_plaintext_sources`). A source that cannot be opened is
reported as "could not open the camera source", whatever the reason, so that the status
never tells a caller what exists on the server or its network.

Several replicas on one database share the cameras through leases
(:mod:`visage.store.leases`): a started supervisor claims and renews, every
:data:`~visage.store.leases.HEARTBEAT_S` seconds, the leases of enabled cameras that are free
or lapsed, and watches exactly those; the others show ``elsewhere``. A replica that dies
loses its leases when they lapse, and another takes its cameras over at its next heartbeat.
Each event a worker writes checks the lease in its own transaction, so a replica that lost a
lease (paused past its expiry, say) stops before writing anything. On SQLite the one process
holds every lease, through the same code.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.errors import NotFoundError, VisageError
from visage.governance.audit import Actor
from visage.governance.audit_ops import CameraCreateAudit, CameraDeleteAudit, CameraUpdateAudit
from visage.governance.consent import normalise_purpose
from visage.governance.profile import GateError
from visage.media.preview import LiveFeed
from visage.media.sources import check_camera_source, mask_source, scrub
from visage.media.video import SourceOpenError, StreamError
from visage.store import crypto, leases
from visage.store.keyring import CAMERA_SOURCE, derive_key
from visage.store.schema import CameraRow
from visage.usecases.halt import HaltedError, blocking
from visage.usecases.watch import StopReason, WatchOptions, watch

log = logging.getLogger("visage.cameras")
OPEN_FAILED = "could not open the camera source"


class CameraState(StrEnum):
    """Where a camera's worker is; ``refused`` waits for a change (profile, source)."""

    starting = "starting"
    running = "running"
    retrying = "retrying"
    refused = "refused"
    halted = "halted"
    """An admin halted 1:N processing for this camera, its purpose, or all (Art. 14(4)(e))."""
    stopped = "stopped"
    unsupervised = "unsupervised"
    """Enabled, but this process watches no camera (a CLI; the server watches them)."""
    elsewhere = "elsewhere"
    """Enabled and watched by another replica (which holds the camera's lease)."""


class CameraStatus(BaseModel):
    state: CameraState = Field(
        description="starting, running, retrying, refused, halted, stopped, or unsupervised "
        "(enabled, but not watched by this process) or elsewhere (watched by another "
        "replica)"
    )
    halt: str | None = Field(default=None, description="the scope of the halt that stops it")
    frames: int = 0
    events: int = 0
    restarts: int = 0
    last_error: str | None = None
    fps: float = Field(default=0.0, description="frames processed per second, lately")
    dropped_frames: int = Field(
        default=0, description="frames skipped because processing was slower than the camera"
    )


class CameraOut(BaseModel):
    id: str
    name: str
    source: str = Field(description="with any password removed")
    purpose: str
    enabled: bool
    created_at: datetime
    status: CameraStatus


def _source_key(core: Visage) -> bytes:
    """A key of its own for camera sources, derived from the master key."""
    return derive_key(core.master_key, CAMERA_SOURCE)


def _source_aad(camera_id: str) -> bytes:
    return b"camera-source:" + camera_id.encode()


def _seal(core: Visage, camera_id: str, source: str) -> bytes:
    return crypto.seal(_source_key(core), source.encode(), _source_aad(camera_id))


def camera_source(core: Visage, row: CameraRow) -> str:
    """The camera's real source URL, credentials included (for FFmpeg only)."""
    if row.source_sealed is None:
        return row.source
    return crypto.open_sealed(_source_key(core), row.source_sealed, _source_aad(row.id)).decode()


def seal_plaintext_sources(core: Visage, session: Session) -> int:
    """Upgrade step: seal the source of every camera stored before sealing existed and keep
    only its masked form in clear. Returns how many rows were sealed."""
    rows = list(session.scalars(select(CameraRow).where(CameraRow.source_sealed.is_(None))))
    for row in rows:
        row.source_sealed = _seal(core, row.id, row.source)
        row.source = mask_source(row.source)
    return len(rows)


def public_error(exc: BaseException, source: str) -> str:
    """What a camera's status may say about a failure: no OS error, no path, no secret."""
    if isinstance(exc, SourceOpenError):
        return OPEN_FAILED
    if isinstance(exc, StreamError):
        return "the camera stream broke"
    if isinstance(exc, VisageError):
        return scrub(exc.message, source)
    return f"internal error ({type(exc).__name__})"


class CameraSupervisor:
    """One watcher thread per enabled camera, restarted with backoff when it fails."""

    def __init__(
        self,
        core: Visage,
        *,
        backoff_s: float = 2.0,
        max_backoff_s: float = 60.0,
        halt_poll_s: float = 1.0,
        lease_ttl_s: float = leases.LEASE_TTL_S,
        heartbeat_s: float = leases.HEARTBEAT_S,
    ):
        self.core, self.backoff_s, self.max_backoff_s = core, backoff_s, max_backoff_s
        self.halt_poll_s = halt_poll_s
        self.lease_ttl_s, self.heartbeat_s = lease_ttl_s, heartbeat_s
        self.holder = leases.new_holder()
        """This process's name on the camera leases it holds."""
        self.held: set[str] = set()
        """Cameras whose lease this process holds (as of the last heartbeat)."""
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._workers: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self.feeds: dict[str, LiveFeed] = {}
        """Each running camera's live view: fps, dropped frames, latest masked frame."""
        self.status: dict[str, CameraStatus] = {}
        self._lock = threading.Lock()
        self.running = False
        """Started (by the server): enabled cameras are watched in this process."""

    def start(self) -> None:
        """Watch every enabled camera whose lease this process gets, until :meth:`stop`;
        the heartbeat renews the leases and takes over lapsed ones."""
        self.running = True
        self.sync()
        if self._beat is None:
            self._beat_stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, name="camera-leases", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._beat_stop.wait(self.heartbeat_s):
            try:
                self.sync()
            except Exception:  # the database is away: the lease checks stop the writes
                log.warning("camera leases: the heartbeat failed", exc_info=True)

    def _guard(self, camera_id: str) -> Callable[[Session], None]:
        def check(session: Session) -> None:
            leases.check(session, self.holder, camera_id)

        return check

    def refresh(self) -> None:
        """The cameras changed: apply it now if running."""
        if self.running:
            self.sync()

    def _run(self, camera: CameraRow, source: str, stop: threading.Event) -> None:
        status = self.status[camera.id]
        feed = self.feeds.setdefault(camera.id, LiveFeed())
        backoff = self.backoff_s
        while not stop.is_set():
            if (halt := blocking(self.core, camera.purpose, camera.name)) is not None:
                status.state, status.halt, status.last_error = CameraState.halted, halt.scope, None
                stop.wait(self.halt_poll_s)  # the source stays closed until resumed
                continue
            status.state, status.halt = CameraState.running, None
            try:
                report = watch(
                    self.core,
                    source,
                    camera.purpose,
                    WatchOptions(camera=camera.name, feed=feed, guard=self._guard(camera.id)),
                    stop=stop,
                    progress=lambda n: setattr(status, "frames", status.frames + 1),
                    actor=Actor(f"camera:{camera.name}"[:64], "system"),
                )
                status.events += len(report.events)
                status.last_error = None
                if report.stopped is StopReason.halted:
                    continue  # not a failure: the next turn shows the halt and waits
            except HaltedError:
                continue  # halted between the check above and the watch's own gate
            except leases.LeaseLostError:
                status.state = CameraState.elsewhere  # another replica watches it now
                return
            except Exception as exc:  # keep supervising; the error is shown in the status
                status.last_error = public_error(exc, source)
                status.state = (
                    CameraState.refused if isinstance(exc, GateError) else CameraState.retrying
                )
                log.warning("camera %s: %s", camera.name, scrub(str(exc), source))
            finally:
                status.dropped_frames += feed.dropped
                feed.stopped()
                feed.dropped = 0
            if stop.is_set():
                break
            status.restarts += 1
            stop.wait(backoff)
            backoff = min(self.max_backoff_s, backoff * 2)
        status.state = CameraState.stopped

    def _start(self, camera: CameraRow) -> None:
        try:
            source = check_camera_source(camera_source(self.core, camera))
        except VisageError as exc:  # e.g. a path stored before the allow-list existed:
            self.status[camera.id] = CameraStatus(state=CameraState.refused, last_error=exc.message)
            return  # it is never handed to FFmpeg
        stop = threading.Event()
        self.status[camera.id] = CameraStatus(state=CameraState.starting)
        thread = threading.Thread(
            target=self._run,
            args=(camera, source, stop),
            name=f"camera-{camera.name}",
            daemon=True,
        )
        self._workers[camera.id] = (thread, stop)
        thread.start()

    def sync(self) -> None:
        """Claim or renew the leases of enabled cameras (when running); start workers for
        the cameras held, stop the others."""
        with self.core.store.session() as session:
            seal_plaintext_sources(self.core, session)
            cameras = {c.id: c for c in session.scalars(select(CameraRow))}
            enabled = [cid for cid, c in cameras.items() if c.enabled]
            held = (
                leases.claim(session, self.holder, enabled, self.lease_ttl_s)
                if self.running
                else set()
            )
        with self._lock:
            if not self.running:
                return
            self.held = held
            for cid in list(self._workers):
                thread, stop = self._workers[cid]
                if cid not in held or not thread.is_alive():
                    del self._workers[cid]
                    stop.set()
                    thread.join(timeout=30)
                    self.feeds.pop(cid, None)
            for cid, camera in cameras.items():
                if cid in held and cid not in self._workers:
                    self._start(camera)
                elif not camera.enabled:
                    self.status[cid] = CameraStatus(state=CameraState.stopped)
                elif cid not in held:
                    self.status[cid] = CameraStatus(state=CameraState.elsewhere)

    def restart(self, camera_id: str) -> None:
        """The camera's settings changed: stop its worker and start it again."""
        with self._lock:
            worker = self._workers.pop(camera_id, None)
            if worker is not None:
                worker[1].set()
                worker[0].join(timeout=30)
        self.sync()

    def stop(self) -> None:
        """Stop every worker; each ends its watch between frames (its last events sent).
        Then give the leases up, so that another replica takes the cameras at once."""
        self._beat_stop.set()
        if self._beat is not None:
            self._beat.join(timeout=30)
            self._beat = None
        with self._lock:
            was_running, self.running = self.running, False
            for _thread, stop in self._workers.values():
                stop.set()
            for thread, _ in self._workers.values():
                thread.join(timeout=30)
            self._workers.clear()
            self.held = set()
        if was_running:
            try:
                with self.core.store.session() as session:
                    leases.release(session, self.holder)
            except Exception:  # they lapse on their own
                log.warning("camera leases: could not release them", exc_info=True)

    def close(self) -> None:
        """The core closes."""
        self.stop()

    def status_of(self, row: CameraRow) -> CameraStatus:
        if not self.running:
            state = CameraState.unsupervised if row.enabled else CameraState.stopped
            return CameraStatus(state=state)
        status = self.status.get(row.id)
        if status is None:
            return CameraStatus(state=CameraState.stopped)
        feed = self.feeds.get(row.id)
        if feed is None:
            return status.model_copy()
        return status.model_copy(
            update={"fps": feed.fps, "dropped_frames": status.dropped_frames + feed.dropped}
        )

    def preview(self, camera_id: str) -> bytes | None:
        """The latest frame of a running camera, every face masked (JPEG), or None."""
        feed = self.feeds.get(camera_id)
        return None if feed is None or not self.running else feed.jpeg()


def supervisor(core: Visage) -> CameraSupervisor:
    """The core's camera supervisor, the same for every door (made on first use, stopped
    when the core closes)."""
    return core.service(CameraSupervisor, CameraSupervisor)


def _out(row: CameraRow, supervisor: CameraSupervisor) -> CameraOut:
    return CameraOut(
        id=row.id,
        name=row.name,
        source=mask_source(row.source),
        purpose=row.purpose,
        enabled=row.enabled,
        created_at=row.created_at,
        status=supervisor.status_of(row),
    )


def add_camera(
    core: Visage,
    name: str,
    source: str,
    purpose: str,
    enabled: bool = True,
    actor: Actor | None = None,
) -> CameraOut:
    """Add a camera. The source must pass the allow-list; it is stored sealed."""
    source = check_camera_source(source)
    purpose = normalise_purpose(purpose)
    with core.store.session() as session:
        if session.scalar(select(CameraRow).where(CameraRow.name == name)) is not None:
            raise VisageError(f"a camera named {name!r} exists already")
        camera_id = uuid.uuid4().hex
        row = CameraRow(
            id=camera_id,
            name=name,
            source=mask_source(source),
            source_sealed=_seal(core, camera_id, source),
            purpose=purpose,
            enabled=enabled,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        core.audit(
            session,
            actor or Actor.local(),
            CameraCreateAudit(
                purpose=purpose, camera=name, source=mask_source(source), enabled=enabled
            ),
        )
    cameras = supervisor(core)
    cameras.refresh()
    with core.store.session() as session:
        return _out(session.get(CameraRow, row.id) or row, cameras)


def list_cameras(core: Visage) -> list[CameraOut]:
    """Every camera with its worker's status in this process."""
    cameras = supervisor(core)
    with core.store.session() as session:
        seal_plaintext_sources(core, session)
        rows = session.scalars(select(CameraRow).order_by(CameraRow.created_at))
        return [_out(r, cameras) for r in rows]


def set_enabled(
    core: Visage,
    camera_id: str,
    enabled: bool,
    actor: Actor | None = None,
) -> CameraOut:
    with core.store.session() as session:
        row = session.get(CameraRow, camera_id)
        if row is None:
            raise NotFoundError(f"no camera {camera_id}")
        row.enabled = enabled
        core.audit(
            session, actor or Actor.local(), CameraUpdateAudit(camera=row.name, enabled=enabled)
        )
    cameras = supervisor(core)
    cameras.refresh()
    with core.store.session() as session:
        return _out(session.get(CameraRow, camera_id), cameras)  # type: ignore[arg-type]


class CameraChanges(BaseModel):
    """An edit of a camera: a field left out (None) stays as it is."""

    name: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    source: str | None = Field(default=None, min_length=1, max_length=1000)
    purpose: str | None = Field(default=None, min_length=1, max_length=64)


def update_camera(
    core: Visage,
    camera_id: str,
    changes: CameraChanges,
    actor: Actor | None = None,
) -> CameraOut:
    """Rename a camera, or change its source (allow-list, sealed) or purpose; audited with
    the fields that changed. A running camera restarts with the new settings."""
    source = None if changes.source is None else check_camera_source(changes.source)
    purpose = None if changes.purpose is None else normalise_purpose(changes.purpose)
    with core.store.session() as session:
        row = session.get(CameraRow, camera_id)
        if row is None:
            raise NotFoundError(f"no camera {camera_id}")
        changed: list[str] = []
        if changes.name is not None and changes.name != row.name:
            taken = session.scalar(select(CameraRow).where(CameraRow.name == changes.name))
            if taken is not None:
                raise VisageError(f"a camera named {changes.name!r} exists already")
            row.name = changes.name
            changed.append("name")
        if source is not None and source != camera_source(core, row):
            row.source, row.source_sealed = mask_source(source), _seal(core, row.id, source)
            changed.append("source")
        if purpose is not None and purpose != row.purpose:
            row.purpose = purpose
            changed.append("purpose")
        if changed:
            core.audit(
                session,
                actor or Actor.local(),
                CameraUpdateAudit(
                    camera=row.name,
                    enabled=row.enabled,
                    changed=changed,
                    purpose=row.purpose,
                    source=row.source if "source" in changed else None,
                ),
            )
    cameras = supervisor(core)
    if changed and cameras.running:
        cameras.restart(camera_id)
    with core.store.session() as session:
        return _out(session.get(CameraRow, camera_id), cameras)  # type: ignore[arg-type]


def camera_preview(core: Visage, camera_id: str) -> bytes:
    """The latest frame of a camera this process watches, with every face masked (JPEG);
    :class:`NotFoundError` when there is none (unknown, stopped, halted, not yet running)."""
    with core.store.session() as session:
        if session.get(CameraRow, camera_id) is None:
            raise NotFoundError(f"no camera {camera_id}")
    jpeg = supervisor(core).preview(camera_id)
    if jpeg is None:
        raise NotFoundError("no live frame: the camera is not running in this server")
    return jpeg


def delete_camera(
    core: Visage,
    camera_id: str,
    actor: Actor | None = None,
) -> None:
    with core.store.session() as session:
        row = session.get(CameraRow, camera_id)
        if row is None:
            raise NotFoundError(f"no camera {camera_id}")
        session.delete(row)
        core.audit(session, actor or Actor.local(), CameraDeleteAudit(camera=row.name))
    supervisor(core).refresh()
