"""Cameras as a resource, and the supervisor that keeps one watcher thread per camera.

Each enabled camera gets its own worker running :func:`visage.usecases.watch.watch`; a worker
that fails (the stream cannot be opened, the profile refuses live 1:N) is restarted with
backoff, and its state is visible in the camera's status. Sources may carry credentials
(``rtsp://user:pass@…``): they are never shown back, only the redacted form.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field
from sqlalchemy import select

from visage.app import Visage
from visage.errors import NotFoundError, VisageError
from visage.governance.audit import Actor
from visage.governance.consent import normalise_purpose
from visage.governance.profile import GateError
from visage.store.schema import CameraRow
from visage.usecases.watch import WatchOptions, watch


class CameraStatus(BaseModel):
    state: str = Field(description="stopped, running, retrying or refused")
    frames: int = 0
    events: int = 0
    restarts: int = 0
    last_error: str | None = None


class CameraOut(BaseModel):
    id: str
    name: str
    source: str = Field(description="with any password removed")
    purpose: str
    enabled: bool
    created_at: datetime
    status: CameraStatus


def redact_source(source: str) -> str:
    parts = urlsplit(source)
    if parts.password is None:
        return source
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class CameraSupervisor:
    """One watcher thread per enabled camera, restarted with backoff when it fails."""

    def __init__(self, core: Visage, *, backoff_s: float = 2.0, max_backoff_s: float = 60.0):
        self.core, self.backoff_s, self.max_backoff_s = core, backoff_s, max_backoff_s
        self._workers: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self.status: dict[str, CameraStatus] = {}
        self._lock = threading.Lock()

    def _run(self, camera: CameraRow, stop: threading.Event) -> None:
        status = self.status[camera.id]
        backoff = self.backoff_s
        while not stop.is_set():
            status.state = "running"
            try:
                report = watch(
                    self.core,
                    camera.source,
                    camera.purpose,
                    WatchOptions(camera=camera.name),
                    stop=stop,
                    progress=lambda n: setattr(status, "frames", status.frames + 1),
                    actor=Actor(f"camera:{camera.name}"[:64], "system"),
                )
                status.events += len(report.events)
                status.last_error = None
            except VisageError as exc:
                status.last_error = exc.message
                status.state = "refused" if isinstance(exc, GateError) else "retrying"
            except Exception as exc:  # keep supervising; the error is shown in the status
                status.last_error = f"{type(exc).__name__}: {exc}"
                status.state = "retrying"
            if stop.is_set():
                break
            status.restarts += 1
            stop.wait(backoff)
            backoff = min(self.max_backoff_s, backoff * 2)
        status.state = "stopped"

    def sync(self) -> None:
        """Start workers for enabled cameras, stop the others."""
        with self.core.store.session() as session:
            cameras = {c.id: c for c in session.scalars(select(CameraRow))}
        with self._lock:
            for cid in list(self._workers):
                if cid not in cameras or not cameras[cid].enabled:
                    thread, stop = self._workers.pop(cid)
                    stop.set()
                    thread.join(timeout=30)
            for cid, camera in cameras.items():
                if camera.enabled and cid not in self._workers:
                    stop = threading.Event()
                    self.status[cid] = CameraStatus(state="starting")
                    thread = threading.Thread(
                        target=self._run,
                        args=(camera, stop),
                        name=f"camera-{camera.name}",
                        daemon=True,
                    )
                    self._workers[cid] = (thread, stop)
                    thread.start()
                elif not camera.enabled:
                    self.status[cid] = CameraStatus(state="stopped")

    def stop_all(self) -> None:
        with self._lock:
            for _thread, stop in self._workers.values():
                stop.set()
            for thread, _ in self._workers.values():
                thread.join(timeout=30)
            self._workers.clear()


def _out(row: CameraRow, supervisor: CameraSupervisor | None) -> CameraOut:
    status = (supervisor.status.get(row.id) if supervisor else None) or CameraStatus(
        state="stopped"
    )
    return CameraOut(
        id=row.id,
        name=row.name,
        source=redact_source(row.source),
        purpose=row.purpose,
        enabled=row.enabled,
        created_at=row.created_at,
        status=status,
    )


def add_camera(
    app: Visage,
    name: str,
    source: str,
    purpose: str,
    enabled: bool = True,
    actor: Actor | None = None,
    supervisor: CameraSupervisor | None = None,
) -> CameraOut:
    purpose = normalise_purpose(purpose)
    with app.store.session() as session:
        if session.scalar(select(CameraRow).where(CameraRow.name == name)) is not None:
            raise VisageError(f"a camera named {name!r} exists already")
        row = CameraRow(
            id=uuid.uuid4().hex,
            name=name,
            source=source,
            purpose=purpose,
            enabled=enabled,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        app.audit(
            session,
            actor or Actor.local(),
            "camera.create",
            purpose=purpose,
            camera=name,
            source=redact_source(source),
            enabled=enabled,
        )
    if supervisor is not None:
        supervisor.sync()
    with app.store.session() as session:
        return _out(session.get(CameraRow, row.id) or row, supervisor)


def list_cameras(app: Visage, supervisor: CameraSupervisor | None = None) -> list[CameraOut]:
    with app.store.session() as session:
        rows = session.scalars(select(CameraRow).order_by(CameraRow.created_at))
        return [_out(r, supervisor) for r in rows]


def set_enabled(
    app: Visage,
    camera_id: str,
    enabled: bool,
    actor: Actor | None = None,
    supervisor: CameraSupervisor | None = None,
) -> CameraOut:
    with app.store.session() as session:
        row = session.get(CameraRow, camera_id)
        if row is None:
            raise NotFoundError(f"no camera {camera_id}")
        row.enabled = enabled
        app.audit(
            session, actor or Actor.local(), "camera.update", camera=row.name, enabled=enabled
        )
    if supervisor is not None:
        supervisor.sync()
    with app.store.session() as session:
        return _out(session.get(CameraRow, camera_id), supervisor)  # type: ignore[arg-type]


def delete_camera(
    app: Visage,
    camera_id: str,
    actor: Actor | None = None,
    supervisor: CameraSupervisor | None = None,
) -> None:
    with app.store.session() as session:
        row = session.get(CameraRow, camera_id)
        if row is None:
            raise NotFoundError(f"no camera {camera_id}")
        session.delete(row)
        app.audit(session, actor or Actor.local(), "camera.delete", camera=row.name)
    if supervisor is not None:
        supervisor.sync()
