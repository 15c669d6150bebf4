"""Anonymisation of images and video, judged by an independent detector (dlib HOG, upsampled
once); bad media fail clearly and fast."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.conftest import make_app
from visage.core import Visage
from visage.errors import InputError
from visage.media.blur import BlurMode, MaskShape
from visage.media.redact import RedactOptions
from visage.media.video import VideoReader
from visage.usecases.anonymize import anonymize
from visage.usecases.enroll import enroll
from visage.usecases.subjects import add_subject, make_consent

JUDGE_EVERY = 5
"""The video test judges every 5th frame of the anonymised clip."""


@functools.cache
def _hog() -> Any:
    """The judge, built once per process (building it costs more than judging a frame)."""
    import dlib

    return dlib.get_frontal_face_detector()


def hog_faces(pixels: np.ndarray) -> int:  # type: ignore[type-arg]
    return len(_hog()(np.ascontiguousarray(pixels), 1))


@pytest.fixture()
def app(tmp_path: Path, shared_app: Visage) -> Visage:
    core = make_app(tmp_path / "home", models=shared_app)
    return core


@pytest.fixture(scope="module")
def clip(data: Path) -> Path:
    return data / "video" / "hamilton_clip.mp4"


def test_video_has_no_face_left_and_keeps_audio(app: Visage, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "anon.mp4"
    seen: list[int] = []
    report = anonymize(app, clip, out, progress=lambda done, total: seen.append(done))
    assert report.kind == "video" and report.frames == 275 and report.faces_masked > 150
    assert seen[-1] == 275
    with av.open(str(out)) as container:
        assert container.streams.audio, "the audio track was dropped"
    from concurrent.futures import ProcessPoolExecutor

    with VideoReader(str(clip)) as original, VideoReader(str(out)) as masked:
        assert masked.info.width == 640 and masked.info.height == 360
        sample = [f.pixels for f in original.frames() if f.index % 10 == 0]
        frames = [(f.index, f.pixels) for f in masked.frames()]
    assert len(frames) == 275
    # The judge is slow (about 0.15 s a frame): it looks at every 5th frame, in two processes.
    # Masks follow tracks that span many frames, so a face left bare for a stretch of frames
    # is still seen; the bench (bench/anonymize.py) judges every frame.
    judged = [(i, pixels) for i, pixels in frames if i % JUDGE_EVERY == 0]
    with ProcessPoolExecutor(2) as pool:
        before = sum(pool.map(hog_faces, sample))
        left = list(pool.map(hog_faces, [pixels for _, pixels in judged], chunksize=4))
    assert before > 10  # the judge does see faces in the original
    assert sum(left) == 0, [i for (i, _), n in zip(judged, left, strict=True) if n]


@pytest.mark.parametrize(
    ("mode", "shape"), [(BlurMode.pixelate, MaskShape.box), (BlurMode.solid, MaskShape.ellipse)]
)
def test_image_modes(
    app: Visage, data: Path, tmp_path: Path, mode: BlurMode, shape: MaskShape
) -> None:
    src = data / "scenes" / "two_people.jpg"
    out = tmp_path / "anon.png"
    report = anonymize(app, src, out, options=RedactOptions(mode=mode, shape=shape))
    assert report.kind == "image" and report.faces_masked == 2
    pixels = app.load_image(out).pixels
    assert hog_faces(app.load_image(src).pixels) >= 1
    assert hog_faces(pixels) == 0
    assert app.analyzer.analyze(pixels, embed=False) == []


def test_keep_enrolled_leaves_only_consenting_people_visible(
    app: Visage, data: Path, tmp_path: Path
) -> None:
    sid = add_subject(app, "Joe", make_consent("F", ["press"])).id
    enroll(app, sid, [data / "people/joe_biden/1.jpg"])
    src = data / "scenes" / "two_people.jpg"
    out = tmp_path / "kept.jpg"
    report = anonymize(app, src, out, keep_enrolled=True, purpose="press")
    assert report.kept_visible == 1 and report.faces_masked == 1
    faces = app.analyzer.analyze(app.load_image(out).pixels)
    assert len(faces) == 1  # Joe, still recognisable; the other person masked
    from visage.usecases.identify import identify

    result = identify(app, out, "press")
    assert [c.subject_id for f in result.faces for c in f.candidates] == [sid]
    with pytest.raises(InputError, match="needs a purpose"):
        anonymize(app, src, tmp_path / "x.jpg", keep_enrolled=True)
    # Another purpose: Joe's consent does not cover it, so everyone is masked.
    report = anonymize(app, src, tmp_path / "y.jpg", keep_enrolled=True, purpose="marketing")
    assert report.kept_visible == 0 and report.faces_masked == 2


def test_bad_media_fail_clearly_and_fast(app: Visage, clip: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:5000])
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for bad in (truncated, text, empty, tmp_path / "missing.mp4"):
        started = time.monotonic()
        with pytest.raises(InputError) as info:
            anonymize(app, bad, tmp_path / "out.mp4")
        assert time.monotonic() - started < 20
        assert str(bad.name) in info.value.message
        assert not (tmp_path / "out.mp4").exists()  # nothing half-written is left
    with pytest.raises(InputError, match="unsupported output"):
        anonymize(app, clip, tmp_path / "out.gif")
    with pytest.raises(InputError, match="different file"):
        anonymize(app, clip, clip)
