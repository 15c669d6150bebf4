"""The demo job: enrol the people of a test-data folder, identify its scenes, anonymise its
video, and write the transparency report of it all.

Each person gets their own consent record (reference ``test-data:people/<folder>``,
purpose ``demo``, legal basis ``research``): even a demo never enrols a face without one.
Re-running reuses subjects already enrolled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from visage.core import Visage
from visage.errors import InputError
from visage.governance.consent import LegalBasis
from visage.usecases import audit_log
from visage.usecases.anonymize import anonymize
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.profile import ProfileChanges, get_profile, set_profile
from visage.usecases.report import ReportFormat, render_transparency, transparency
from visage.usecases.subjects import add_subject, list_subjects, make_consent

DEMO_PURPOSE = "demo"
DEMO_DPIA = "demo-only: public test images, no real deployment"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


class DemoMatch(BaseModel):
    scene: str
    box: list[int]
    name: str | None
    score: float | None


class DemoReport(BaseModel):
    subjects: int
    templates: int
    rejected: list[str]
    matches: list[DemoMatch]
    anonymized_video: str | None = None
    transparency_report: str
    audit_entries: int
    audit_intact: bool


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def demo(core: Visage, data: Path, step: Callable[[str], None] | None = None) -> DemoReport:
    people, scenes = data / "people", data / "scenes"
    if not people.is_dir() or not scenes.is_dir():
        raise InputError(f"{data}: expected folders people/ and scenes/ (see shared/faces)")
    if get_profile(core).identification_refusal() is not None:
        # The demo data dir holds public test images only; its profile says so.
        set_profile(core, ProfileChanges(dpia_ref=DEMO_DPIA))
    existing = {s.name: s for s in list_subjects(core)}
    templates, rejected = 0, []
    for folder in sorted(p for p in people.iterdir() if p.is_dir()):
        name = folder.name.replace("_", " ").title()
        if name in existing and existing[name].templates:
            templates += existing[name].templates
            continue
        if step:
            step(f"enrolling {name}")
        subject_id = (
            existing[name].id
            if name in existing
            else add_subject(
                core,
                name,
                make_consent(
                    f"test-data:people/{folder.name}", [DEMO_PURPOSE], LegalBasis.research.value
                ),
            ).id
        )
        report = enroll(core, subject_id, _images(folder))
        templates += len(report.enrolled)
        rejected += [f"{r.image}: {r.reason}" for r in report.rejected]
    matches = []
    for scene in _images(scenes):
        if step:
            step(f"identifying {scene.name}")
        result = identify(core, scene, DEMO_PURPOSE)
        for face in result.faces:
            best = face.candidates[0] if face.candidates else None
            matches.append(
                DemoMatch(
                    scene=scene.name,
                    box=face.box,
                    name=best.name if best else None,
                    score=best.score if best else None,
                )
            )
    video = data / "video" / "hamilton_clip.mp4"
    anonymized = None
    if video.is_file():
        if step:
            step(f"anonymising {video.name}")
        anonymized = core.home / "demo-anonymized.mp4"
        anonymize(core, video, anonymized)
    if step:
        step("writing the transparency report")
    published = core.home / "transparency.html"
    published.write_text(render_transparency(transparency(core), ReportFormat.html))
    check = audit_log.verify(core)
    return DemoReport(
        subjects=len(list_subjects(core)),
        templates=templates,
        rejected=rejected,
        matches=matches,
        anonymized_video=str(anonymized) if anonymized else None,
        transparency_report=str(published),
        audit_entries=check.entries,
        audit_intact=check.ok,
    )
