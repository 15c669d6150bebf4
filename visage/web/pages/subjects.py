"""Subjects (enrollers): the list, adding a person with their consent, the subject page
(consents, templates with their reference crops, enrolment), access export and erasure.

A thin door: every action is a use-case of :mod:`visage.usecases` called with the signed-in
user's actor, exactly as the API routes of :mod:`visage.api.routers.subjects` call them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from visage.api.deps import Core, RateLimiter
from visage.errors import ConsentError, InputError
from visage.governance.access import UseCase
from visage.governance.consent import LegalBasis
from visage.usecases import enroll as enroll_uc
from visage.usecases import export as export_uc
from visage.usecases import references as references_uc
from visage.usecases import subjects as subjects_uc
from visage.web import form_errors, i18n
from visage.web.forms import files, text
from visage.web.render import page
from visage.web.session import CheckedForm, EnrollerViewer, Viewer, allowed

router = APIRouter(include_in_schema=False)

PER_PAGE = 50

ReferenceViewer = Annotated[Viewer, Depends(allowed(UseCase.references))]

LEGAL_BASES: dict[str, str] = {
    LegalBasis.explicit_consent.value: "Explicit consent",
    LegalBasis.employment.value: "Employment",
    LegalBasis.vital_interests.value: "Vital interests",
    LegalBasis.public_interest.value: "Substantial public interest",
    LegalBasis.research.value: "Research",
}
"""Legal bases (GDPR Art. 9(2)) as the forms show them (English source, translated)."""

REASONS: dict[str, str] = {
    enroll_uc.RejectCode.unreadable: "Not a readable image.",
    enroll_uc.RejectCode.too_large: "The file is too large.",
    enroll_uc.RejectCode.no_face: "No face found.",
    enroll_uc.RejectCode.several_faces: "Several faces: an enrolment photo must show one person.",
    enroll_uc.RejectCode.too_small: "The face is too small.",
    enroll_uc.RejectCode.turned_away: "The face is turned away from the camera.",
    enroll_uc.RejectCode.blurred: "The photo is blurred.",
    enroll_uc.RejectCode.consent: "No valid consent record.",
    enroll_uc.RejectCode.other: "The photo could not be enrolled.",
}
"""A sentence per enrolment rejection code (English source, translated in the template)."""

NOTICES: dict[str, str] = {
    "added": "Subject added.",
    "consent-added": "Consent record added.",
    "withdrawn": "Consent withdrawn.",
    "withdrawn-deleted": "Consent withdrawn. No valid consent remains: "
    "the subject's templates were deleted.",
}
"""Messages after a redirect (``?notice=``): a fixed list, so a link cannot inject text."""


@dataclass(frozen=True)
class Verdict:
    """What the enrolment said about one uploaded photo."""

    filename: str
    enrolled: bool
    quality: float | None = None
    reason: str = ""  # English sentence for the code (translated in the template)
    detail: str = ""  # the use-case's own English reason, with its numbers


def _purposes(value: str) -> list[str]:
    return [p for p in re.split(r"[\s,;]+", value) if p]


def _consent_fields(form: FormData) -> dict[str, Any]:
    """The consent fields of a form, as the API's :class:`ConsentIn` takes them."""
    expires = text(form, "expires_on", max_length=20)
    return {
        "reference": text(form, "reference", max_length=200),
        "purposes": _purposes(text(form, "purposes")),
        "legal_basis": text(form, "legal_basis", max_length=60)
        or LegalBasis.explicit_consent.value,
        "expires_on": expires or None,
    }


_FIELD_LABELS = {
    "name": "Name",
    "reference": "Consent reference",
    "purposes": "Purposes",
    "legal_basis": "Legal basis",
    "expires_on": "Expires",
}


def _invalid(exc: ValidationError, viewer: Viewer) -> str:
    """The first problem of a form, with the field's label, in the viewer's language."""
    return form_errors.describe(exc.errors(), i18n.translator(viewer.lang), _FIELD_LABELS)


FORM_FIELDS = ("name", "reference", "purposes", "legal_basis", "expires_on")


def _form_values(form: FormData | None) -> dict[str, str]:
    """What to put back in a form's fields (all of them, empty on a first visit)."""
    if form is None:
        values = dict.fromkeys(FORM_FIELDS, "")
        values["legal_basis"] = LegalBasis.explicit_consent.value
        return values
    return {key: text(form, key) for key in FORM_FIELDS}


@router.get("/subjects")
def subject_list(
    request: Request,
    core: Core,
    viewer: EnrollerViewer,
    q: Annotated[str, Query(max_length=200)] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    listing = subjects_uc.page_subjects(core, page_no, PER_PAGE, q)
    return page(request, "subjects/list.html", viewer, listing=listing)


def _new_form(
    request: Request,
    viewer: Viewer,
    form: FormData | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "subjects/new.html",
        viewer,
        status_code,
        values=_form_values(form),
        legal_bases=LEGAL_BASES,
        error=error,
        today=date.today().isoformat(),
    )


@router.get("/subjects/new")
def new_subject_form(request: Request, viewer: EnrollerViewer) -> HTMLResponse:
    return _new_form(request, viewer)


@router.post("/subjects/new")
def add_subject(
    request: Request, core: Core, viewer: EnrollerViewer, form: CheckedForm
) -> Response:
    try:
        body = subjects_uc.NewSubject.model_validate(
            {"name": text(form, "name", max_length=200), "consent": _consent_fields(form)}
        )
        created = subjects_uc.add_subject(
            core, body.name, body.consent.record(), viewer.principal.actor
        )
    except ValidationError as exc:
        return _new_form(request, viewer, form, _invalid(exc, viewer), 422)
    except (ConsentError, InputError) as exc:
        return _new_form(request, viewer, form, exc.message, 422)
    return RedirectResponse(f"/subjects/{created.id}?notice=added", status_code=303)


def _subject_page(
    request: Request,
    core: Core,
    viewer: Viewer,
    subject_id: str,
    *,
    status_code: int = 200,
    notice: str = "",
    verdicts: list[Verdict] | None = None,
    consent_form: FormData | None = None,
    consent_error: str = "",
    erase_error: str = "",
) -> HTMLResponse:
    subject = subjects_uc.show_subject(core, subject_id)
    templates = references_uc.template_references(core, subject_id, viewer.principal)
    return page(
        request,
        "subjects/subject.html",
        viewer,
        status_code,
        subject=subject,
        templates=templates,
        consent_valid=any(c.valid for c in subject.consents),
        legal_bases=LEGAL_BASES,
        notice=NOTICES.get(notice, ""),
        verdicts=verdicts,
        reasons=REASONS,
        values=_form_values(consent_form),
        consent_error=consent_error,
        erase_error=erase_error,
        today=date.today().isoformat(),
    )


@router.get("/subjects/{subject_id}")
def subject_page(
    request: Request,
    core: Core,
    viewer: EnrollerViewer,
    subject_id: str,
    notice: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    return _subject_page(request, core, viewer, subject_id, notice=notice)


@router.post("/subjects/{subject_id}/consents")
def add_consent(
    request: Request, core: Core, viewer: EnrollerViewer, subject_id: str, form: CheckedForm
) -> Response:
    try:
        consent = subjects_uc.ConsentIn.model_validate(_consent_fields(form))
        subjects_uc.add_consent(core, subject_id, consent.record(), viewer.principal.actor)
    except ValidationError as exc:
        error = _invalid(exc, viewer)
    except ConsentError as exc:
        error = exc.message
    else:
        return RedirectResponse(f"/subjects/{subject_id}?notice=consent-added", status_code=303)
    return _subject_page(
        request,
        core,
        viewer,
        subject_id,
        status_code=422,
        consent_form=form,
        consent_error=error,
    )


@router.post("/subjects/{subject_id}/consents/withdraw")
def withdraw_consent(
    core: Core, viewer: EnrollerViewer, subject_id: str, form: CheckedForm
) -> Response:
    reference = text(form, "reference", max_length=200)
    result = subjects_uc.withdraw_consent(core, subject_id, reference, viewer.principal.actor)
    notice = "withdrawn-deleted" if result.templates_deleted else "withdrawn"
    return RedirectResponse(f"/subjects/{subject_id}?notice={notice}", status_code=303)


def _verdicts(names: list[str], report: enroll_uc.EnrollReport) -> list[Verdict]:
    """The report in upload order, with file names (the use-case labels bytes by index)."""
    by_label: dict[str, Verdict] = {}
    for ok in report.enrolled:
        by_label[ok.image] = Verdict(ok.image, enrolled=True, quality=ok.quality)
    for no in report.rejected:
        by_label[no.image] = Verdict(
            no.image, enrolled=False, reason=REASONS[no.code], detail=no.reason
        )
    out = []
    for i, name in enumerate(names):
        verdict = by_label.get(f"upload #{i + 1}")
        if verdict is not None:
            out.append(
                Verdict(name, verdict.enrolled, verdict.quality, verdict.reason, verdict.detail)
            )
    return out


@router.post("/subjects/{subject_id}/enrol")
async def enrol(
    request: Request, core: Core, viewer: EnrollerViewer, subject_id: str, form: CheckedForm
) -> HTMLResponse:
    """Photos from the file field (several, or dropped on the drop zone) or one webcam
    capture (posted by subjects.js); each gets a verdict. Photos are never kept."""
    uploads = await files(core, form, "photos")
    if not uploads:
        raise InputError("choose at least one photo to enrol")
    limiter: RateLimiter = request.app.state.rate_limits["model"]
    for _ in uploads:  # one model run per photo, as the API counts one per request
        limiter.take(viewer.principal.key_id)
    report = await run_in_threadpool(
        enroll_uc.enroll,
        core,
        subject_id,
        [u.data for u in uploads],
        None,
        viewer.principal.actor,
    )
    verdicts = _verdicts([u.filename for u in uploads], report)
    return _subject_page(request, core, viewer, subject_id, verdicts=verdicts)


@router.get("/subjects/{subject_id}/templates/{template_id}/reference.jpg")
def reference_crop(
    core: Core, viewer: ReferenceViewer, subject_id: str, template_id: str
) -> Response:
    data = references_uc.reference_image(core, subject_id, template_id, viewer.principal)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post("/subjects/{subject_id}/export")
async def export(
    core: Core, viewer: EnrollerViewer, subject_id: str, form: CheckedForm
) -> Response:
    """The subject access archive (a zip of JSON files and face crops), as the API sends it;
    a POST because the export is audited."""
    data, _ = await run_in_threadpool(
        export_uc.build_export, core, subject_id, viewer.principal.actor
    )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="subject-{subject_id}.zip"'},
    )


@router.post("/subjects/{subject_id}/erase")
async def erase(
    request: Request, core: Core, viewer: EnrollerViewer, subject_id: str, form: CheckedForm
) -> Response:
    """Erase once the subject's name is typed; the answer is the signed certificate (JSON,
    as the API and the CLI give it), downloaded."""
    typed = text(form, "confirm_name", max_length=200)
    try:
        certificate = await run_in_threadpool(
            subjects_uc.erase_named, core, subject_id, typed, viewer.principal.actor
        )
    except subjects_uc.NameMismatchError:
        return _subject_page(
            request,
            core,
            viewer,
            subject_id,
            status_code=422,
            erase_error="The name typed does not match. Nothing was erased.",
        )
    return Response(
        certificate.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="erasure-certificate-{subject_id}.json"'
        },
    )
