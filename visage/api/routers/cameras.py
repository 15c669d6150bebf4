"""Cameras the server watches (admin) and the events they and identify calls produce."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from visage.api.deps import CameraAdmin, Core, EventReader
from visage.api.problems import PROBLEM_RESPONSES
from visage.usecases import cameras as cameras_uc
from visage.usecases import events as events_uc

router = APIRouter(prefix="/v1", tags=["cameras"], responses=PROBLEM_RESPONSES)


class CameraIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    source: str = Field(
        min_length=1,
        max_length=1000,
        description="rtsp://, rtsps://, http:// or https:// URL, or a local video device "
        "(/dev/videoN or an index); anything else is refused (422). Stored sealed; shown "
        "back with passwords and tokens masked.",
        examples=["rtsp://user:pass@10.0.0.5/stream1"],
    )
    purpose: str = Field(min_length=1, max_length=64, examples=["access-control"])
    enabled: bool = True


class CameraPatch(BaseModel):
    enabled: bool


@router.post(
    "/cameras",
    response_model=cameras_uc.CameraOut,
    status_code=201,
    summary="Add a camera; the server starts watching it if enabled",
)
def add_camera(body: CameraIn, core: Core, who: CameraAdmin) -> cameras_uc.CameraOut:
    return cameras_uc.add_camera(
        core, body.name, body.source, body.purpose, body.enabled, who.actor
    )


@router.get(
    "/cameras",
    response_model=list[cameras_uc.CameraOut],
    summary="Cameras with their worker status",
)
def list_cameras(core: Core, _: CameraAdmin) -> list[cameras_uc.CameraOut]:
    return cameras_uc.list_cameras(core)


@router.patch(
    "/cameras/{camera_id}",
    response_model=cameras_uc.CameraOut,
    summary="Enable or disable a camera",
)
def update_camera(
    camera_id: str, body: CameraPatch, core: Core, who: CameraAdmin
) -> cameras_uc.CameraOut:
    return cameras_uc.set_enabled(core, camera_id, body.enabled, who.actor)


@router.delete("/cameras/{camera_id}", status_code=204, summary="Remove a camera")
def delete_camera(camera_id: str, core: Core, who: CameraAdmin) -> None:
    cameras_uc.delete_camera(core, camera_id, who.actor)


@router.get(
    "/events",
    response_model=list[events_uc.EventOut],
    summary="Recognitions of enrolled subjects, newest first (an operator key: only its purposes)",
)
def list_events(
    core: Core,
    who: EventReader,
    subject_id: Annotated[str | None, Query(max_length=32)] = None,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[events_uc.EventOut]:
    return events_uc.events(
        core, viewer=who, subject_id=subject_id, camera=camera, since=since, limit=limit
    )
