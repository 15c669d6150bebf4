"""Masks that no detector can see through, in every mode: judged on every frame by dlib (HOG
upsampled once finds no face; no masked face's descriptor is within 0.6 of the original's),
on a clip of large, close faces built here and on the first frames of the Hamilton clip.
The full clips, against deface, are in bench/anonymize.py.

Where the time went (issue 12): the judge, not the masking, above all dlib's ResNet
descriptors (~115 ms a face here, where dlib is built without BLAS; one per face of the
original and per face per mode). The judge now runs the same network with ONNX Runtime
(~9 ms, the same descriptors to 1e-6: ``test_the_judge_descriptors_are_dlibs``); each
original frame is studied once for all its masked versions; the judge processes are forked
once per module, after the models are loaded here (each used to load its own, ~4 s); they
study the originals and judge each output while the next is being anonymised; Hamilton's
default output is anonymised once for both Hamilton tests, and the still once per mode for
its tests. What is left is HOG on every whole frame and the anonymisation itself."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.conftest import clip_head
from tests.mask_judge import (
    ENGINE_TOLERANCE,
    REIDENTIFIABLE,
    Study,
    Verdict,
    descriptors,
    dlib_descriptors,
    judge_masked,
    load_models,
    study,
)
from tests.zoom_clip import build_zoom_clip
from visage.config import Settings
from visage.core import Visage
from visage.media.blur import BlurMode, MaskShape
from visage.media.redact import RedactOptions
from visage.media.video import VideoReader
from visage.usecases.anonymize import AnonymizeReport, anonymize

MODES = (
    (BlurMode.gaussian, MaskShape.ellipse),
    (BlurMode.pixelate, MaskShape.box),
    (BlurMode.solid, MaskShape.ellipse),
)
Frame = NDArray[np.uint8]
HAMILTON_EVERY = range(90, 126)
"""Hamilton frames judged in every mode: its first 4.2 s from frame 90 (before it, HOG finds
no face in the original)."""
HAMILTON_236 = range(225, 250)
"""Hamilton frames around frame 236, judged in the default mode."""
Original = tuple[Frame, Future[Study]]
"""An original frame and the judge's study of it (made in a judge process)."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("masks")


@pytest.fixture(scope="module")
def bare(folder: Path, shared_app: Visage) -> Visage:
    """No data directory: plain masking, as on a fresh install."""
    core = Visage(Settings(home=folder / "no-home"))
    core._analyzer = shared_app.analyzer
    return core


@pytest.fixture(scope="module")
def judges() -> Iterator[ProcessPoolExecutor]:
    """Two judge processes for the module (dlib holds the GIL), forked after dlib's models
    are loaded here, so that they inherit them."""
    load_models()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


@pytest.fixture(scope="module")
def hamilton_250(data: Path, folder: Path) -> Path:
    """The first 250 frames of the Hamilton clip (packets copied, not re-encoded)."""
    return clip_head(data / "video/hamilton_clip.mp4", folder / "hamilton-250.mp4", 8.35)


@pytest.fixture(scope="module")
def hamilton_originals(hamilton_250: Path, judges: ProcessPoolExecutor) -> dict[int, Original]:
    """The Hamilton frames both tests judge, by index, with their studies: submitted once
    for the module, before its default output is made, so that the two overlap."""
    frames = _frames(hamilton_250)
    assert len(frames) >= HAMILTON_236.stop
    return {i: _studied(judges, frames[i]) for i in [*HAMILTON_EVERY, *HAMILTON_236]}


@pytest.fixture(scope="module")
def hamilton_250_default(
    bare: Visage, hamilton_250: Path, folder: Path, hamilton_originals: dict[int, Original]
) -> Path:
    """Visage's output of ``hamilton_250`` with the default options, which are the first of
    ``MODES``: anonymised once, judged by both Hamilton tests (after ``hamilton_originals``
    is submitted)."""
    default = RedactOptions()
    assert (default.mode, default.shape) == MODES[0], "split this fixture by mode"
    out = folder / "hamilton-250-out.mp4"
    anonymize(bare, hamilton_250, out)
    return out


def _frames(path: Path) -> list[Frame]:
    with VideoReader(str(path)) as reader:
        return [f.pixels for f in reader.frames()]


Mode = tuple[BlurMode, MaskShape]


def _anonymised(
    core: Visage, clip: Path, folder: Path, modes: Iterable[Mode]
) -> Iterator[tuple[Mode, Path]]:
    """``clip`` anonymised in each of ``modes`` in turn, each when the next is asked for."""
    for mode, shape in modes:
        out = folder / f"{clip.stem}-{mode}-{shape}.mp4"
        anonymize(core, clip, out, options=RedactOptions(mode=mode, shape=shape))
        yield (mode, shape), out


def _studied(judges: ProcessPoolExecutor, frame: Frame) -> Original:
    return frame, judges.submit(study, frame)


def _judge(
    judges: ProcessPoolExecutor,
    originals: list[Original],
    outputs: Iterable[tuple[Mode, Path]],
    frames: slice = slice(None),
) -> dict[Mode, list[Verdict]]:
    """The verdicts on the ``originals`` in each output (the output's ``frames``), each
    output judged while the next is being anonymised."""
    judged = {}
    for mode, path in outputs:
        masked = _frames(path)[frames]
        assert len(masked) == len(originals)
        judged[mode] = [
            judges.submit(judge_masked, frame, seen.result(), pixels)
            for (frame, seen), pixels in zip(originals, masked, strict=True)
        ]
    return {mode: [verdict.result() for verdict in output] for mode, output in judged.items()}


def _assert_unrecognisable(verdicts: dict[Mode, list[Verdict]], min_faces: int) -> None:
    """In every one of ``MODES``: HOG finds no face in any frame, and no face of the
    original is within ``REIDENTIFIABLE`` of its masked version in any frame."""
    assert sorted(verdicts) == sorted(MODES)
    faces = sum(v.faces_in_original for v in verdicts[MODES[0]])
    assert faces >= min_faces, f"the judge sees only {faces} faces in the original"
    for (mode, shape), per in verdicts.items():
        found = [i for i, v in enumerate(per) if v.found]
        reid = [i for i, v in enumerate(per) if v.reidentifiable]
        nearest = min(d for v in per for d in v.distances)
        assert found == [], f"{mode}/{shape}: HOG finds a face in frames {found}"
        assert reid == [], f"{mode}/{shape}: re-identifiable in frames {reid}"
        assert nearest >= REIDENTIFIABLE


def test_large_close_faces_every_frame(
    bare: Visage, data: Path, folder: Path, judges: ProcessPoolExecutor
) -> None:
    """A slow zoom over scenes/ (faces growing to half the frame's height), 45 frames."""
    clip = build_zoom_clip(data, folder / "zoom.mp4", seconds_per_scene=0.6)
    # The judges study the original while the first output is being made.
    originals = [_studied(judges, frame) for frame in _frames(clip)]
    outputs = _anonymised(bare, clip, folder, MODES)
    _assert_unrecognisable(_judge(judges, originals, outputs), min_faces=40)


def test_hamilton_every_frame(
    bare: Visage,
    data: Path,
    folder: Path,
    judges: ProcessPoolExecutor,
    hamilton_originals: dict[int, Original],
    hamilton_250_default: Path,
) -> None:
    """Frames 90-125 of the Hamilton clip (small faces, a moving camera), where the judge
    sees faces in the original (before frame 90 HOG finds none), with tracks as they would
    be in the whole clip: the clip's first 4.2 s are anonymised in the other modes, and the
    first mode's are frames 90-125 of the module's 250-frame default output (the redactor
    sees a frame only after the frames before it, never after)."""
    clip = clip_head(data / "video/hamilton_clip.mp4", folder / "hamilton.mp4", 4.2)
    head = _frames(clip)
    assert len(head) == HAMILTON_EVERY.stop
    originals = [hamilton_originals[i] for i in HAMILTON_EVERY]
    # Both heads are the clip's own packets, decoded alike: the originals are this clip's.
    assert all(np.array_equal(head[i], hamilton_originals[i][0]) for i in HAMILTON_EVERY)
    made = _anonymised(bare, clip, folder, MODES[1:])
    outputs = itertools.chain([(MODES[0], hamilton_250_default)], made)
    every = slice(HAMILTON_EVERY.start, HAMILTON_EVERY.stop)
    _assert_unrecognisable(_judge(judges, originals, outputs, every), min_faces=20)


def test_hamilton_frame_236(
    hamilton_250_default: Path,
    judges: ProcessPoolExecutor,
    hamilton_originals: dict[int, Original],
) -> None:
    """Issue 14: the judge "found" a face in frame 236 of Visage's output. It is no face (a
    hand and a bag that HOG scores -0.28 in the original) and nothing is masked there: the
    re-encoding alone lifts it to ~0, which the judge counts as its own noise. Frames 225-249,
    with tracks as in the whole clip (its first 250 frames anonymised): HOG finds nothing."""
    assert len(_frames(hamilton_250_default)) >= HAMILTON_236.stop
    originals = [hamilton_originals[i] for i in HAMILTON_236]
    outputs = [(MODES[0], hamilton_250_default)]
    near = slice(HAMILTON_236.start, HAMILTON_236.stop)
    verdicts = _judge(judges, originals, outputs, near)[MODES[0]]
    found = [HAMILTON_236.start + i for i, v in enumerate(verdicts) if v.found]
    assert found == [], f"HOG finds a face in frames {found}"
    assert all(v.reidentifiable == 0 for v in verdicts)


STILL = "scenes/obama_and_biden.jpg"


@pytest.fixture(scope="module")
def still(bare: Visage, data: Path) -> Frame:
    return bare.load_image(data / STILL).pixels


@pytest.fixture(scope="module")
def still_study(still: Frame, judges: ProcessPoolExecutor) -> Future[Study]:
    """The judge's study of the still, made once for the three modes (HOG upsampled once on
    2000x1428 is most of a still's judging), in a judge process while the still is masked."""
    return judges.submit(study, still)


@pytest.fixture(scope="module")
def still_outputs(
    bare: Visage, data: Path, folder: Path, still_study: Future[Study]
) -> dict[BlurMode, tuple[AnonymizeReport, Frame]]:
    """The still anonymised in each mode (default shape), once for the module: the report
    and the masked pixels. (After ``still_study`` is submitted: the two overlap.)"""
    outputs = {}
    for mode in BlurMode:
        out = folder / f"still-{mode}.png"
        report = anonymize(bare, data / STILL, out, options=RedactOptions(mode=mode))
        outputs[mode] = (report, bare.load_image(out).pixels)
    return outputs


@pytest.mark.parametrize("mode", list(BlurMode))
def test_still_large_faces(
    mode: BlurMode,
    judges: ProcessPoolExecutor,
    still: Frame,
    still_study: Future[Study],
    still_outputs: dict[BlurMode, tuple[AnonymizeReport, Frame]],
) -> None:
    """The largest faces of the test data (up to 224 px), at full resolution."""
    report, masked = still_outputs[mode]
    assert report.faces_masked == 3 and report.audited is False
    verdict = judges.submit(judge_masked, still, still_study.result(), masked).result()
    assert verdict.faces_in_original >= 2
    assert verdict.found == 0 and verdict.reidentifiable == 0, verdict


def test_the_judge_descriptors_are_dlibs(
    still: Frame,
    still_study: Future[Study],
    still_outputs: dict[BlurMode, tuple[AnonymizeReport, Frame]],
) -> None:
    """The judge runs dlib's ResNet with ONNX Runtime (about 12x faster than dlib here). On
    the still's faces, before and after masking in every mode (inputs far from the faces the
    network was trained on), its descriptors, and the distances the verdicts turn on, are
    dlib's own to well within the judge's tolerance."""
    shapes = [shape for shape, _ in still_study.result().faces]
    assert len(shapes) >= 2
    before, reference = descriptors(still, shapes), dlib_descriptors(still, shapes)
    assert np.abs(before - reference).max() < ENGINE_TOLERANCE / 10
    for _, masked in still_outputs.values():
        after, dlib_after = descriptors(masked, shapes), dlib_descriptors(masked, shapes)
        assert np.abs(after - dlib_after).max() < ENGINE_TOLERANCE / 10
        ours = np.linalg.norm(before - after, axis=1)
        dlibs = np.linalg.norm(reference - dlib_after, axis=1)
        assert np.abs(ours - dlibs).max() < ENGINE_TOLERANCE / 10
