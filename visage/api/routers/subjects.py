"""Subjects, their consent records and templates — for enroller keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from visage.api.deps import Core, Enroller, ModelRateLimit, allowed
from visage.api.problems import PROBLEM_RESPONSES
from visage.api.routers.recognition import image_body
from visage.api.uploads import MAX_PARTS, read_many
from visage.governance.access import Principal, UseCase
from visage.governance.erasure import ErasureCertificate
from visage.usecases import enroll as enroll_uc
from visage.usecases import erase as erase_uc
from visage.usecases import export as export_uc
from visage.usecases import references as references_uc
from visage.usecases import subjects as subjects_uc

ENROL_BODY = image_body("image")
ENROL_BODY["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["image"] = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "maxItems": MAX_PARTS,
    "description": "One photo per part; repeat the field for several.",
}

router = APIRouter(prefix="/v1/subjects", tags=["subjects"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    response_model=subjects_uc.SubjectCreated,
    status_code=201,
    summary="Register a consenting person with their consent record",
)
def create_subject(
    body: subjects_uc.NewSubject, core: Core, who: Enroller
) -> subjects_uc.SubjectCreated:
    return subjects_uc.add_subject(core, body.name, body.consent.record(), who.actor)


@router.get("", response_model=list[subjects_uc.SubjectOut], summary="All subjects")
def list_subjects(
    core: Core, _: Enroller, name: str | None = Query(default=None, max_length=200)
) -> list[subjects_uc.SubjectOut]:
    """All subjects; with `name`, only those with exactly that name (case aside)."""
    return subjects_uc.list_subjects(core, name)


@router.get(
    "/{subject_id}",
    response_model=subjects_uc.SubjectDetail,
    summary="One subject: consent records, template metadata",
)
def get_subject(subject_id: str, core: Core, _: Enroller) -> subjects_uc.SubjectDetail:
    return subjects_uc.show_subject(core, subject_id)


class SubjectPatch(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Ada King"])


@router.patch(
    "/{subject_id}", response_model=subjects_uc.SubjectDetail, summary="Correct a subject's name"
)
def update_subject(
    subject_id: str, body: SubjectPatch, core: Core, who: Enroller
) -> subjects_uc.SubjectDetail:
    return subjects_uc.rename_subject(core, subject_id, body.name, who.actor)


@router.post(
    "/{subject_id}/consents",
    response_model=subjects_uc.SubjectDetail,
    summary="Add a consent record (for example a renewal or a new purpose)",
)
def add_consent(
    subject_id: str, body: subjects_uc.ConsentIn, core: Core, who: Enroller
) -> subjects_uc.SubjectDetail:
    subjects_uc.add_consent(core, subject_id, body.record(), who.actor)
    return subjects_uc.show_subject(core, subject_id)


@router.post(
    "/{subject_id}/consents/{reference}/withdraw",
    response_model=subjects_uc.WithdrawResult,
    summary="Withdraw a consent record; templates go when no valid consent remains",
)
def withdraw_consent(
    subject_id: str, reference: str, core: Core, who: Enroller
) -> subjects_uc.WithdrawResult:
    return subjects_uc.withdraw_consent(core, subject_id, reference, who.actor)


@router.delete(
    "/{subject_id}",
    response_model=ErasureCertificate,
    summary="Erase a subject (crypto-shredding) and return the signed erasure certificate",
)
async def erase_subject(subject_id: str, core: Core, who: Enroller) -> ErasureCertificate:
    return await run_in_threadpool(erase_uc.erase, core, subject_id, who.actor)


@router.get(
    "/{subject_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the zip archive"}},
    summary="Subject access: everything held about this person, as JSON in a zip",
)
async def export_subject(subject_id: str, core: Core, who: Enroller) -> Response:
    data, _ = await run_in_threadpool(export_uc.build_export, core, subject_id, who.actor)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="subject-{subject_id}.zip"'},
    )


@router.post(
    "/{subject_id}/templates",
    response_model=enroll_uc.EnrollReport,
    openapi_extra=ENROL_BODY,
    summary="Enrol photos (one face each); 422 with every reason when none is enrolled",
    dependencies=[ModelRateLimit],
)
async def enroll(
    subject_id: str, request: Request, core: Core, who: Enroller
) -> enroll_uc.EnrollReport:
    """One template per photo. Several photos go as repeated multipart fields `image`;
    the report lists each one enrolled or rejected (with its `code` and `reason`). When
    none is enrolled the answer is a 422 problem whose `rejected` member gives each reason."""
    images = await read_many(request, "image")
    report = await run_in_threadpool(enroll_uc.enroll, core, subject_id, images, None, who.actor)
    return enroll_uc.require_enrolled(report)


@router.get(
    "/{subject_id}/templates",
    response_model=list[subjects_uc.TemplateOut],
    summary="Template metadata (never the templates)",
)
def list_templates(subject_id: str, core: Core, _: Enroller) -> list[subjects_uc.TemplateOut]:
    return subjects_uc.show_subject(core, subject_id).template_list


@router.delete(
    "/{subject_id}/templates/{template_id}", status_code=204, summary="Delete one template"
)
def delete_template(subject_id: str, template_id: str, core: Core, who: Enroller) -> None:
    subjects_uc.delete_template(core, subject_id, template_id, who.actor)


ReferenceReader = Annotated[Principal, Depends(allowed(UseCase.references))]


@router.get(
    "/{subject_id}/templates/{template_id}/reference",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the reference face crop"}},
    summary="The aligned face crop kept with a template (enrollers and reviewers)",
)
def template_reference(
    subject_id: str, template_id: str, core: Core, who: ReferenceReader
) -> Response:
    data = references_uc.reference_image(core, subject_id, template_id, who)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
