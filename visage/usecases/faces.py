"""Detect faces in an image; the face output schema shared by the other use-cases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from visage.core import ImageInput, Visage
from visage.vision.types import Detection, Face

if TYPE_CHECKING:
    from visage.governance.audit import Actor


class QualityOut(BaseModel):
    """Picture quality of a face: geometry and sharpness, nothing about the person."""

    score: float = Field(description="0..1, size x sharpness x pose combined")
    face_px: float = Field(description="shorter side of the face box, pixels")
    interocular_px: float
    sharpness: float = Field(description="variance of the Laplacian of the aligned chip")
    yaw: float = Field(description="head-turn proxy from landmarks; 0 is frontal")
    roll_deg: float


class FaceOut(BaseModel):
    box: list[int] = Field(description="left, top, right, bottom in pixels")
    score: float = Field(description="detection confidence")
    landmarks: list[list[float]] = Field(description="5 points: eyes, nose, mouth corners")
    quality: QualityOut


class DetectResult(BaseModel):
    image: str
    width: int
    height: int
    faces: list[FaceOut]


def face_out(face: Face) -> FaceOut:
    q = face.quality
    return FaceOut(
        box=face.detection.box.as_list(),
        score=round(face.detection.score, 4),
        landmarks=[[round(float(x), 1), round(float(y), 1)] for x, y in face.detection.landmarks],
        quality=QualityOut(
            score=round(q.score, 3),
            face_px=round(q.face_px, 1),
            interocular_px=round(q.interocular_px, 1),
            sharpness=round(q.sharpness, 1),
            yaw=round(q.yaw, 3),
            roll_deg=round(q.roll_deg, 1),
        ),
    )


def primary_detection(found: list[Detection], width: int, height: int) -> Detection | None:
    """The face a single-subject photo is about: among faces at least half as large as the
    largest, the one nearest the image centre (the first such, in ``found``'s order). It
    needs only the boxes, so a caller can pick it before aligning and embedding anything."""
    if not found:
        return None
    largest = max(d.box.area for d in found)
    cx, cy = width / 2, height / 2

    def off_centre(d: Detection) -> float:
        fx, fy = d.box.center
        return (fx - cx) ** 2 + (fy - cy) ** 2

    return min((d for d in found if d.box.area >= largest / 2), key=off_centre)


def primary_face(faces: list[Face], width: int, height: int) -> Face | None:
    """The face of :func:`primary_detection` among ``faces``."""
    main = primary_detection([f.detection for f in faces], width, height)
    return next((f for f in faces if f.detection is main), None)


def detect(core: Visage, image: ImageInput, actor: Actor | None = None) -> DetectResult:
    # The audit's models (and the store behind them) only when a detection is made: the
    # other use-cases import this module for primary_face and the output schema.
    from visage.governance.audit import Actor
    from visage.governance.audit_ops import DetectAudit

    loaded = core.load_image(image)
    faces = core.analyzer.analyze(loaded.pixels, embed=False)
    # Audited wherever there is a data dir; before `visage init` there is none to audit in,
    # and the door says so (see Visage.audit_if_initialised).
    core.audit_if_initialised(
        actor or Actor.local(), DetectAudit(input_sha256=loaded.sha256, faces=len(faces))
    )
    return DetectResult(
        image=loaded.source,
        width=loaded.width,
        height=loaded.height,
        faces=[face_out(f) for f in faces],
    )
