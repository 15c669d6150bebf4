"""Cameras (admins): the list with each worker's status, add, edit, enable, disable, and a
live preview in which every face is masked.

The page calls :mod:`visage.usecases.cameras`, like ``/v1/cameras``: the source allow-list
and the sealing of credentials are the use-case's; its refusal is shown on the form. The
preview is the latest frame the running watcher kept, already masked and encoded
(:class:`visage.media.preview.LiveFeed`): no raw frame exists to be served.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from visage.api.deps import Core
from visage.api.problems import classify
from visage.core import Visage
from visage.errors import NotFoundError, VisageError
from visage.usecases import cameras as cameras_uc
from visage.usecases import signage as signage_uc
from visage.web import form_errors, i18n
from visage.web.forms import text
from visage.web.render import page
from visage.web.session import CameraAdminViewer, CheckedForm, Viewer

router = APIRouter(include_in_schema=False)

CameraId = Annotated[str, Path(max_length=32, pattern=r"^[0-9a-f]{1,32}$")]
NOTICES = frozenset({"added", "saved", "enabled", "disabled"})
PREVIEW_REFRESH_S = 3


def _find(core: Visage, camera_id: str) -> cameras_uc.CameraOut:
    for camera in cameras_uc.list_cameras(core):
        if camera.id == camera_id:
            return camera
    raise NotFoundError(f"no camera {camera_id}")


FIELD_LABELS = {"name": "Name", "source": "Source", "purpose": "Purpose"}
"""The camera form's fields, named by their labels (the templates' strings)."""


def _refusal(exc: VisageError | ValidationError, viewer: Viewer) -> str | None:
    """The message to show on the form for an input the use-case refused; None for errors
    that are not about the form (no right, gone: the error page answers those)."""
    if isinstance(exc, ValidationError):
        return form_errors.describe(exc.errors(), i18n.translator(viewer.lang), FIELD_LABELS)
    status, _title = classify(exc)
    return exc.message if status in (400, 409, 422) else None


def _list_page(
    request: Request,
    core: Visage,
    viewer: Viewer,
    *,
    status_code: int = 200,
    error: str = "",
    notice: str = "",
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    return page(
        request,
        "cameras/index.html",
        viewer,
        status_code,
        cameras=cameras_uc.list_cameras(core),
        error=error,
        notice=notice if notice in NOTICES else "",
        form=form or {"name": "", "source": "", "purpose": ""},
        refresh=PREVIEW_REFRESH_S,
        up=cameras_uc.CameraState.running,
    )


@router.get("/cameras")
def cameras(
    request: Request, core: Core, viewer: CameraAdminViewer, done: str = ""
) -> HTMLResponse:
    return _list_page(request, core, viewer, notice=done)


@router.post("/cameras")
def add(request: Request, core: Core, viewer: CameraAdminViewer, form: CheckedForm) -> Response:
    fields = {k: text(form, k, max_length=1000) for k in ("name", "source", "purpose")}
    try:
        wanted = cameras_uc.CameraChanges(**fields)
        cameras_uc.add_camera(
            core,
            wanted.name or "",
            wanted.source or "",
            wanted.purpose or "",
            enabled=bool(text(form, "enabled")),
            actor=viewer.principal.actor,
        )
    except (VisageError, ValidationError) as exc:
        if (message := _refusal(exc, viewer)) is None:
            raise
        return _list_page(request, core, viewer, status_code=422, error=message, form=fields)
    return RedirectResponse("/cameras?done=added", status_code=303)


def _edit_page(
    request: Request,
    core: Visage,
    viewer: Viewer,
    camera: cameras_uc.CameraOut,
    *,
    status_code: int = 200,
    error: str = "",
    notice: str = "",
) -> HTMLResponse:
    return page(
        request,
        "cameras/edit.html",
        viewer,
        status_code,
        camera=camera,
        error=error,
        notice=notice if notice in NOTICES else "",
        refresh=PREVIEW_REFRESH_S,
        up=cameras_uc.CameraState.running,
    )


@router.get("/cameras/{camera_id}")
def edit_form(
    request: Request, core: Core, viewer: CameraAdminViewer, camera_id: CameraId, done: str = ""
) -> HTMLResponse:
    return _edit_page(request, core, viewer, _find(core, camera_id), notice=done)


@router.post("/cameras/{camera_id}")
def save(
    request: Request, core: Core, viewer: CameraAdminViewer, camera_id: CameraId, form: CheckedForm
) -> Response:
    """Save an edit. An empty Source keeps the current one (it is shown masked, so the
    form cannot hold it)."""
    camera = _find(core, camera_id)
    fields = {k: text(form, k, max_length=1000) or None for k in ("name", "source", "purpose")}
    try:
        changes = cameras_uc.CameraChanges(**fields)
        cameras_uc.update_camera(core, camera_id, changes, viewer.principal.actor)
    except (VisageError, ValidationError) as exc:
        if (message := _refusal(exc, viewer)) is None:
            raise
        return _edit_page(request, core, viewer, camera, status_code=422, error=message)
    return RedirectResponse(f"/cameras/{camera_id}?done=saved", status_code=303)


def _set_enabled(core: Visage, viewer: Viewer, camera_id: str, enabled: bool) -> Response:
    cameras_uc.set_enabled(core, camera_id, enabled, viewer.principal.actor)
    done = "enabled" if enabled else "disabled"
    return RedirectResponse(f"/cameras?done={done}", status_code=303)


@router.post("/cameras/{camera_id}/enable")
def enable(
    core: Core, viewer: CameraAdminViewer, camera_id: CameraId, form: CheckedForm
) -> Response:
    del form  # checked for its CSRF token
    return _set_enabled(core, viewer, camera_id, True)


@router.post("/cameras/{camera_id}/disable")
def disable(
    core: Core, viewer: CameraAdminViewer, camera_id: CameraId, form: CheckedForm
) -> Response:
    del form  # checked for its CSRF token
    return _set_enabled(core, viewer, camera_id, False)


@router.get("/cameras/{camera_id}/preview.jpg")
def preview(core: Core, viewer: CameraAdminViewer, camera_id: CameraId) -> Response:
    """The running camera's latest frame, every face masked; never cached. A camera that is
    not running has no frame: the error page says so (404)."""
    del viewer  # admins only
    jpeg = cameras_uc.camera_preview(core, camera_id)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/cameras/{camera_id}/sign.{fmt}")
def sign(
    core: Core,
    viewer: CameraAdminViewer,
    camera_id: CameraId,
    fmt: signage_uc.SignFormat,
    size: signage_uc.SignSize = signage_uc.SignSize.A4,
) -> Response:
    """The camera's printable sign (:mod:`visage.usecases.signage`), as a download."""
    del viewer  # admins only
    made = signage_uc.sign(core, _find(core, camera_id).name, fmt, size)
    disposition = f'attachment; filename="{made.filename}"'
    return Response(
        made.data, media_type=fmt.media_type, headers={"Content-Disposition": disposition}
    )
