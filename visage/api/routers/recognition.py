"""identify (1:N), verify (1:1), detect — for operator keys, bound to their purposes."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from visage.api.deps import (
    Core,
    IdentifyRateLimit,
    ModelRateLimit,
    Operator,
    PurposeFor,
    read_form,
    read_images,
    read_upload,
)
from visage.api.problems import PROBLEM_RESPONSES
from visage.usecases import faces as faces_uc
from visage.usecases import identify as identify_uc
from visage.usecases import verify as verify_uc

router = APIRouter(prefix="/v1", tags=["recognition"], responses=PROBLEM_RESPONSES)


def image_body(*fields: str) -> dict[str, Any]:
    """OpenAPI: multipart with these file fields, or (one field) the raw image as body."""
    props = {f: {"type": "string", "format": "binary"} for f in fields}
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": props, "required": list(fields)}
        }
    }
    if len(fields) == 1:
        content["image/*"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


AuthorisationRef = Annotated[
    str | None,
    Query(
        description="Reference of the authorisation for this search (AI Act Art. 26(10)); "
        "required when the profile is a law-enforcement operator in a public space. Also "
        "accepted as a multipart form field.",
        max_length=200,
    ),
]


@router.post(
    "/identify",
    response_model=identify_uc.IdentifyResult,
    openapi_extra=image_body("image"),
    summary="1:N: every face against consenting subjects for the purpose",
    dependencies=[IdentifyRateLimit],
)
async def identify(
    request: Request,
    core: Core,
    who: Operator,
    purpose: PurposeFor,
    authorisation_ref: AuthorisationRef = None,
) -> identify_uc.IdentifyResult:
    upload = await read_form(request, "image", texts=("authorisation_ref",))
    data = upload.images[0]
    if authorisation_ref is None:  # also accepted as a multipart field beside the image
        authorisation_ref = upload.texts.get("authorisation_ref")
    result = await run_in_threadpool(
        partial(identify_uc.identify, authorisation_ref=authorisation_ref),
        core,
        data,
        purpose,
        who.actor,
    )
    request.app.state.metrics.faces.inc(len(result.faces))
    request.app.state.metrics.matches.inc(sum(1 for f in result.faces if f.status is not None))
    return result


@router.post(
    "/verify",
    response_model=verify_uc.VerifyResult,
    openapi_extra=image_body("image_a", "image_b"),
    summary="1:1: are the main faces of two images the same person?",
    dependencies=[ModelRateLimit],
)
async def verify(
    request: Request, core: Core, who: Operator, purpose: PurposeFor
) -> verify_uc.VerifyResult:
    a, b = await read_images(request, "image_a", "image_b")
    return await run_in_threadpool(verify_uc.verify, core, a, b, who.actor, purpose)


@router.post(
    "/detect",
    response_model=faces_uc.DetectResult,
    openapi_extra=image_body("image"),
    summary="Faces: boxes, landmarks, quality",
    dependencies=[ModelRateLimit],
)
async def detect(request: Request, core: Core, who: Operator) -> faces_uc.DetectResult:
    data = await read_upload(request, "image")
    return await run_in_threadpool(faces_uc.detect, core, data, who.actor)
