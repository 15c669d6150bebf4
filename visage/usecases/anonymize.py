"""Anonymise images and videos: every face masked, irreversibly, before anything is written.

With ``keep_enrolled`` and a purpose, faces recognised as subjects whose valid consent covers
the purpose stay visible; every other face — and every face not yet recognised — is masked.
That is a 1:N identification, so it goes through the same :class:`PurposeMatcher` as
``identify`` and ``watch``: the deployment profile's gate applies (a refusal is audited), the
eligible set is read afresh for every face, and the run is audited. For a watchlist purpose
the gate refuses it before any frame: a face left visible would name a candidate before two
reviewers confirmed.

Plain masking needs no data directory: on a fresh install (no ``visage init``) it runs
unaudited — :func:`plan` says so, before any work, so that a door can tell the user. Whatever
needs the data directory (``keep_enrolled``; the audit of a run where one exists) is opened
before the first frame, so a missing or locked data directory fails at once, not after
minutes of processing. The output is written under a temporary name in its own directory
and renamed into place at the end: a failed run never leaves a half-written file under the
final name.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from visage.core import Visage
from visage.errors import InputError, NotInitialisedError
from visage.governance.audit import Actor
from visage.governance.audit_ops import AnonymizeAudit
from visage.media.blur import mask_faces
from visage.media.crops import encode_image
from visage.media.image import RGBImage
from visage.media.redact import Recognise, RedactOptions, VideoRedactor
from visage.media.tracking import Track
from visage.media.video import VIDEO_SUFFIXES, Frame, Prefetch, VideoReader, VideoWriter
from visage.usecases.matching import MatchOperation, PurposeMatcher
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
    audited: bool = Field(
        default=True, description="recorded in the audit log (false without a data directory)"
    )


class AnonymizePlan(BaseModel):
    """What a run will need, known before any frame is processed."""

    audited: bool = Field(description="the run will be recorded in the data directory's log")


def plan(core: Visage, *, keep_enrolled: bool = False) -> AnonymizePlan:
    """Check what the run needs before any work: ``keep_enrolled`` needs an initialised data
    directory (the gallery and the consents); plain masking needs none, and is audited only
    where a data directory exists. Opens the store when there is one, so that a wrong key or
    a locked database fails now."""
    initialised = core.initialised  # the SQLite file, or the database at database_url
    if keep_enrolled and not initialised:
        raise NotInitialisedError(
            f"--keep-enrolled needs the data directory (no Visage data in {core.home}): "
            "enrolled people are recognised from its gallery; initialise it first, or "
            "mask everyone without --keep-enrolled"
        )
    if initialised:
        _ = core.store  # opened, migrated and key-checked now, not after the run (SQLite)
    return AnonymizePlan(audited=initialised)


def _recogniser(matcher: PurposeMatcher) -> tuple[Recognise, set[str]]:
    seen: set[str] = set()

    def recognise(
        pixels: RGBImage, det: Detection, _track: Track, _all: list[Detection]
    ) -> tuple[str, float] | None:
        found = matcher.match_detection(pixels, det)
        if found is None:
            return None  # a bystander: the embedding goes out of scope here
        seen.add(found.match.subject_id)
        return found.match.subject_id, found.match.score

    return recognise, seen


def anonymize(
    core: Visage,
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
    authorisation_ref: str | None = None,
) -> AnonymizeReport:
    options = options or RedactOptions()
    if keep_enrolled and not purpose:
        raise InputError(
            "keeping enrolled people unmasked needs a purpose: they are recognised only "
            "for a purpose they consented to"
        )
    if output.resolve() == source.resolve():
        raise InputError("the output must be a different file from the input")
    actor = actor or Actor.local()
    audited = plan(core, keep_enrolled=keep_enrolled).audited
    recognise: Recognise | None = None
    seen: set[str] = set()
    if keep_enrolled and purpose:
        matcher = PurposeMatcher(
            core, purpose, actor, MatchOperation.anonymize, authorisation_ref=authorisation_ref
        )
        matcher.check_gate()
        purpose, authorisation_ref = matcher.purpose, matcher.authorisation_ref
        recognise, seen = _recogniser(matcher)
    else:
        authorisation_ref = None  # nobody is recognised: no search to authorise
    report = _run(core, source, output, options, recognise, codec, crf, progress, None)
    report.audited = audited
    if not audited:
        return report  # nobody recognised, nothing stored: plain masking on a fresh install
    record(
        core,
        actor,
        report,
        purpose=purpose if keep_enrolled else None,
        recognised=seen,
        authorisation_ref=authorisation_ref,
    )
    return report


def mask_file(
    core: Visage,
    source: Path,
    output: Path,
    *,
    options: RedactOptions,
    codec: str | None = None,
    crf: int = 23,
    encoder_threads: int | None = None,
    progress: ProgressFn | None = None,
) -> AnonymizeReport:
    """Mask every face of one file, recognising nobody: what a batch worker runs. It needs
    the models only — no data directory, no key — and records nothing; the process that
    handed out the work audits the result (:func:`record`). ``encoder_threads`` pins the
    video encoder's thread count: x264's output depends on it, so a fixed count gives the
    same bytes on every machine (the default follows the machine's cores)."""
    if output.resolve() == source.resolve():
        raise InputError("the output must be a different file from the input")
    report = _run(core, source, output, options, None, codec, crf, progress, encoder_threads)
    report.audited = False
    return report


def record(
    core: Visage,
    actor: Actor,
    report: AnonymizeReport,
    *,
    purpose: str | None = None,
    recognised: set[str] | None = None,
    authorisation_ref: str | None = None,
) -> None:
    """Append the audit entry of one anonymised file (the data directory must exist)."""
    with core.store.session() as session:
        core.audit(
            session,
            actor,
            AnonymizeAudit(
                purpose=purpose,
                kind=report.kind,
                frames=report.frames,
                faces_masked=report.faces_masked,
                kept_visible=report.kept_visible,
                recognised_subjects=sorted(recognised or ()),
                authorisation_ref=authorisation_ref,
            ),
        )
    report.audited = True


def _run(
    core: Visage,
    source: Path,
    output: Path,
    options: RedactOptions,
    recognise: Recognise | None,
    codec: str | None,
    crf: int,
    progress: ProgressFn | None,
    encoder_threads: int | None,
) -> AnonymizeReport:
    started = time.perf_counter()
    suffix = source.suffix.lower()
    out_suffix = output.suffix.lower()
    if suffix in IMAGE_SUFFIXES or (suffix not in VIDEO_SUFFIXES and out_suffix in IMAGE_SUFFIXES):
        report = _image(core, source, output, options, recognise)
    else:
        report = _video(
            core, source, output, options, recognise, codec, crf, progress, encoder_threads
        )
    report.seconds = round(time.perf_counter() - started, 3)
    report.fps = round(report.frames / report.seconds, 2) if report.seconds else 0.0
    return report


def _image(
    core: Visage, source: Path, output: Path, options: RedactOptions, recognise: Recognise | None
) -> AnonymizeReport:
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{output}: write an image as one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    pixels = core.load_image(source).pixels.copy()
    detections = core.analyzer.detector.detect(pixels, options.threshold)
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
    try:
        data = encode_image(pixels, output.suffix)
    except InputError as exc:
        raise InputError(f"{output}: {exc.message}") from None
    with _staged(output) as tmp:
        tmp.write_bytes(data)
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
    core: Visage,
    source: Path,
    output: Path,
    options: RedactOptions,
    recognise: Recognise | None,
    codec: str | None,
    crf: int,
    progress: ProgressFn | None,
    encoder_threads: int | None = None,
) -> AnonymizeReport:
    if output.suffix.lower() not in VIDEO_SUFFIXES:  # named here, not as the temporary file
        raise InputError(
            f"{output}: unsupported output type; use one of {', '.join(sorted(VIDEO_SUFFIXES))}"
        )
    with VideoReader(str(source), keep_audio=True) as reader, _staged(output) as tmp:
        info = reader.info
        redactor = VideoRedactor(
            core.analyzer.detector, info.width, info.height, options, recognise
        )
        writer = VideoWriter(tmp, reader, codec=codec, crf=crf)
        if encoder_threads:
            writer.stream.codec_context.thread_count = encoder_threads  # before it opens
        frames = 0
        try:
            with Prefetch(reader.items(), 16, drop_oldest=False) as items:
                for item in items:
                    if isinstance(item, Frame):
                        pixels = _writable(item.pixels)  # masked in place
                        writer.write(redactor.process(item.index, pixels))
                        frames += 1
                        if progress is not None:
                            progress(frames, info.frames)
                    else:
                        writer.write_audio(item)
            writer.close()
        except BaseException:
            writer.container.close()
            raise
        if frames == 0:
            raise InputError(f"{source}: no video frame could be decoded")
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


def _writable(pixels: RGBImage) -> RGBImage:
    """The decoded frame itself when it may be written to (masked in place), else a copy."""
    return pixels if pixels.flags.writeable else np.array(pixels)


@contextmanager
def _staged(output: Path) -> Iterator[Path]:
    """A temporary path beside ``output`` (same directory, so the rename is atomic; same
    suffix, so the container is chosen from it) that becomes ``output`` when the block ends
    without error, and is removed when it fails."""
    if not output.parent.is_dir():
        raise InputError(f"{output}: the folder {output.parent} does not exist")
    # Created by the writer itself, so it gets the usual permissions (mkstemp's are 0600).
    tmp = output.with_name(f".{output.stem}.{secrets.token_hex(6)}.part{output.suffix}")
    try:
        yield tmp
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
