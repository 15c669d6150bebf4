"""Masks that no detector can see through, in every mode: judged on every frame by dlib (HOG
upsampled once finds no face; no masked face's descriptor is within 0.6 of the original's),
on a clip of large, close faces built here and on the first frames of the Hamilton clip.
The full clips, against deface, are in bench/anonymize.py."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import clip_head
from tests.mask_judge import REIDENTIFIABLE, judge_frame, judge_outputs
from tests.zoom_clip import build_zoom_clip
from visage.config import Settings
from visage.core import Visage
from visage.media.blur import BlurMode, MaskShape
from visage.media.redact import RedactOptions
from visage.media.video import VideoReader
from visage.usecases.anonymize import anonymize

MODES = (
    (BlurMode.gaussian, MaskShape.ellipse),
    (BlurMode.pixelate, MaskShape.box),
    (BlurMode.solid, MaskShape.ellipse),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("masks")


@pytest.fixture(scope="module")
def bare(folder: Path, shared_app: Visage) -> Visage:
    """No data directory: plain masking, as on a fresh install."""
    core = Visage(Settings(home=folder / "no-home"))
    core._analyzer = shared_app.analyzer
    return core


def _frames(path: Path) -> list[np.ndarray]:  # type: ignore[type-arg]
    with VideoReader(str(path)) as reader:
        return [f.pixels for f in reader.frames()]


def _judge_every_frame(
    core: Visage, clip: Path, folder: Path, min_faces: int, first: int = 0
) -> None:
    """Anonymise ``clip`` in every mode; judge every frame from ``first`` on."""
    outputs = []
    for mode, shape in MODES:
        out = folder / f"{clip.stem}-{mode}-{shape}.mp4"
        anonymize(core, clip, out, options=RedactOptions(mode=mode, shape=shape))
        outputs.append(_frames(out)[first:])
    original = _frames(clip)[first:]
    assert all(len(o) == len(original) for o in outputs)
    jobs = [(frame, [o[i] for o in outputs]) for i, frame in enumerate(original)]
    with ProcessPoolExecutor(2) as pool:
        verdicts = list(pool.map(judge_outputs, jobs, chunksize=4))
    faces = sum(v[0].faces_in_original for v in verdicts)
    assert faces >= min_faces, f"the judge sees only {faces} faces in the original"
    for k, (mode, shape) in enumerate(MODES):
        per = [v[k] for v in verdicts]
        found = [i for i, v in enumerate(per) if v.found]
        reid = [i for i, v in enumerate(per) if v.reidentifiable]
        nearest = min(d for v in per for d in v.distances)
        assert found == [], f"{mode}/{shape}: HOG finds a face in frames {found}"
        assert reid == [], f"{mode}/{shape}: re-identifiable in frames {reid}"
        assert nearest >= REIDENTIFIABLE


def test_large_close_faces_every_frame(bare: Visage, data: Path, folder: Path) -> None:
    """A slow zoom over scenes/ (faces growing to half the frame's height), 45 frames."""
    clip = build_zoom_clip(data, folder / "zoom.mp4", seconds_per_scene=0.6)
    _judge_every_frame(bare, clip, folder, min_faces=40)


def test_hamilton_every_frame(bare: Visage, data: Path, folder: Path) -> None:
    """Frames 90-125 of the Hamilton clip (small faces, a moving camera), where the judge
    sees faces in the original (before frame 90 HOG finds none): the clip's first 4.2 s are
    anonymised, so tracks are as they would be in the whole clip."""
    clip = clip_head(data / "video/hamilton_clip.mp4", folder / "hamilton.mp4", 4.2)
    _judge_every_frame(bare, clip, folder, min_faces=20, first=90)


def test_hamilton_frame_236(bare: Visage, data: Path, folder: Path) -> None:
    """Issue 14: the judge "found" a face in frame 236 of Visage's output. It is no face (a
    hand and a bag that HOG scores -0.28 in the original) and nothing is masked there: the
    re-encoding alone lifts it to ~0, which the judge counts as its own noise. Frames 225-249,
    with tracks as in the whole clip (its first 250 frames anonymised): HOG finds nothing."""
    clip = clip_head(data / "video/hamilton_clip.mp4", folder / "hamilton-250.mp4", 8.35)
    out = folder / "hamilton-250-out.mp4"
    anonymize(bare, clip, out)
    original, masked = _frames(clip), _frames(out)
    assert len(original) == len(masked) >= 250
    pairs = [(original[i], masked[i]) for i in range(225, 250)]
    with ProcessPoolExecutor(2) as pool:
        verdicts = list(pool.map(judge_frame, pairs, chunksize=4))
    found = [225 + i for i, v in enumerate(verdicts) if v.found]
    assert found == [], f"HOG finds a face in frames {found}"
    assert all(v.reidentifiable == 0 for v in verdicts)


@pytest.mark.parametrize("mode", list(BlurMode))
def test_still_large_faces(bare: Visage, data: Path, folder: Path, mode: BlurMode) -> None:
    """The largest faces of the test data (up to 224 px), at full resolution."""
    src = data / "scenes/obama_and_biden.jpg"
    out = folder / f"still-{mode}.png"
    report = anonymize(bare, src, out, options=RedactOptions(mode=mode))
    assert report.faces_masked == 3 and report.audited is False
    (verdict,) = judge_outputs((bare.load_image(src).pixels, [bare.load_image(out).pixels]))
    assert verdict.faces_in_original >= 2
    assert verdict.found == 0 and verdict.reidentifiable == 0, verdict
