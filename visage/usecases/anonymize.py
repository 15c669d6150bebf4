"""Anonymise images and videos: every face masked, irreversibly, before anything is written.

With ``keep_enrolled`` and a purpose, faces recognised as subjects whose valid consent covers
the purpose stay visible; every other face — and every face not yet recognised — is masked.
That is a 1:N identification, so the deployment profile's gate applies and the run is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, Field

from visage.app import Visage
from visage.errors import InputError
from visage.gallery.matching import calibrate
from visage.governance.audit import Actor
from visage.governance.consent import normalise_purpose
from visage.governance.profile import GateError
from visage.media.blur import mask_faces
from visage.media.image import RGBImage
from visage.media.redact import Recognise, RedactOptions, VideoRedactor
from visage.media.tracking import Track
from visage.media.video import VIDEO_SUFFIXES, Frame, Prefetch, VideoReader, VideoWriter
from visage.usecases.profile import get_profile
from visage.vision.types import Detection

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
ProgressFn = Callable[[int, int], None]


class AnonymizeReport(BaseModel):
    input: str
    output: str
    kind: str = Field(description="image or video")
    frames: int
    faces_masked: int = Field(description="face regions masked, summed over frames")
    kept_visible: int = Field(description="face regions left visible (enrolled, consenting)")
    tracks: int = Field(description="distinct faces followed (video)")
    seconds: float
    fps: float


def _recogniser(app: Visage, purpose: str) -> tuple[Recognise, set[str]]:
    refusal = get_profile(app).identification_refusal()
    if refusal is not None:
        raise GateError(refusal)
    with app.store.session() as session:
        eligible = app.eligibility.get(session, purpose).ids
    seen: set[str] = set()

    def recognise(
        pixels: RGBImage, det: Detection, _track: Track, _all: list[Detection]
    ) -> tuple[str, float] | None:
        face = app.analyzer.describe(pixels, [det])[0]
        if face.embedding is None or not eligible:
            return None
        hits = app.gallery.search(face.embedding[None, :], 1, allowed=eligible)[0]
        if hits and (score := calibrate(hits[0].cosine)) >= app.threshold:
            seen.add(hits[0].label)
            return hits[0].label, score
        return None  # a bystander: the embedding goes out of scope here

    return recognise, seen


def anonymize(
    app: Visage,
    source: Path,
    output: Path,
    *,
    options: RedactOptions | None = None,
    keep_enrolled: bool = False,
    purpose: str | None = None,
    codec: str | None = None,
    crf: int = 23,
    progress: ProgressFn | None = None,
    actor: Actor | None = None,
) -> AnonymizeReport:
    options = options or RedactOptions()
    if keep_enrolled and not purpose:
        raise InputError(
            "--keep-enrolled needs --purpose: enrolled people are recognised only "
            "for a purpose they consented to"
        )
    if output.resolve() == source.resolve():
        raise InputError("the output must be a different file from the input")
    recognise, seen = (None, set[str]())
    if keep_enrolled and purpose:
        purpose = normalise_purpose(purpose)
        recognise, seen = _recogniser(app, purpose)
    started = time.perf_counter()
    suffix = source.suffix.lower()
    out_suffix = output.suffix.lower()
    if suffix in IMAGE_SUFFIXES or (suffix not in VIDEO_SUFFIXES and out_suffix in IMAGE_SUFFIXES):
        report = _image(app, source, output, options, recognise)
    else:
        report = _video(app, source, output, options, recognise, codec, crf, progress)
    report.seconds = round(time.perf_counter() - started, 3)
    report.fps = round(report.frames / report.seconds, 2) if report.seconds else 0.0
    with app.store.session() as session:
        app.audit(
            session,
            actor or Actor.local(),
            "anonymize",
            purpose=purpose if keep_enrolled else None,
            kind=report.kind,
            frames=report.frames,
            faces_masked=report.faces_masked,
            kept_visible=report.kept_visible,
            recognised_subjects=sorted(seen),
        )
    return report


def _image(
    app: Visage, source: Path, output: Path, options: RedactOptions, recognise: Recognise | None
) -> AnonymizeReport:
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{output}: write an image as one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    pixels = app.load_image(source).pixels.copy()
    detections = app.analyzer.detector.detect(pixels, options.threshold)
    keep = [
        d
        for d in detections
        if recognise is not None
        and recognise(pixels, d, Track(0, d.box, 0, 0), detections) is not None
    ]
    masked = mask_faces(
        pixels,
        [d.box for d in detections if d not in keep],
        mode=options.mode,
        shape=options.shape,
        margin=options.margin,
    )
    # Re-encoded from pixels: no EXIF, GPS or thumbnail of the original survives.
    ok, data = cv2.imencode(output.suffix, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"{output}: cannot encode this image type")
    output.write_bytes(data.tobytes())
    return AnonymizeReport(
        input=str(source),
        output=str(output),
        kind="image",
        frames=1,
        faces_masked=masked,
        kept_visible=len(keep),
        tracks=len(detections),
        seconds=0.0,
        fps=0.0,
    )


def _video(
    app: Visage,
    source: Path,
    output: Path,
    options: RedactOptions,
    recognise: Recognise | None,
    codec: str | None,
    crf: int,
    progress: ProgressFn | None,
) -> AnonymizeReport:
    tmp = output.with_name(f".{output.stem}.part{output.suffix}")
    with VideoReader(str(source), keep_audio=True) as reader:
        info = reader.info
        redactor = VideoRedactor(app.analyzer.detector, info.width, info.height, options, recognise)
        writer = VideoWriter(tmp, reader, codec=codec, crf=crf)
        frames = 0
        try:
            with Prefetch(reader.items(), 16, drop_oldest=False) as items:
                for item in items:
                    if isinstance(item, Frame):
                        pixels = np.array(item.pixels)  # writable copy
                        writer.write(redactor.process(item.index, pixels))
                        frames += 1
                        if progress is not None:
                            progress(frames, info.frames)
                    else:
                        writer.write_audio(item)
            writer.close()
        except BaseException:
            writer.container.close()
            tmp.unlink(missing_ok=True)
            raise
    if frames == 0:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{source}: no video frame could be decoded")
    tmp.replace(output)
    tracks = redactor.finish()
    return AnonymizeReport(
        input=str(source),
        output=str(output),
        kind="video",
        frames=frames,
        faces_masked=redactor.masked,
        kept_visible=redactor.kept_visible,
        tracks=len(tracks),
        seconds=0.0,
        fps=0.0,
    )
