"""The ONNX embedder is dlib's ResNet converted from the shipped weights: it must give
dlib's descriptors for every face in the test data (cosine >= 0.9999)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from visage.core import Visage
from visage.vision.dlib_format import DlibFormatError, read_dlib_net
from visage.vision.embed import DlibEmbedder, OnnxEmbedder

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@pytest.fixture(scope="module")
def chips_by_image(shared_app: Visage, data: Path) -> dict[Path, list[np.ndarray]]:
    """Every image of the test data and the chips of the faces found in it, in path order:
    the faces are found once for the module (the costly part), each test takes its images."""
    found: dict[Path, list[np.ndarray]] = {}
    for path in sorted(data.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        pixels = shared_app.load_image(path).pixels
        dets = shared_app.analyzer.detector.detect(pixels)
        found[path] = [shared_app.analyzer.aligner.chip(pixels, det.box) for det in dets]
    return found


def _chips(chips_by_image: dict[Path, list[np.ndarray]], under: Path) -> list[np.ndarray]:
    """The chips of every face in the images under the folder ``under``."""
    return [c for path, cs in chips_by_image.items() if path.is_relative_to(under) for c in cs]


def _dlib_raw(chips: list[np.ndarray]) -> np.ndarray:  # type: ignore[type-arg]
    return DlibEmbedder().raw(chips)


def test_onnx_equals_dlib_on_every_face(
    shared_app: Visage, data: Path, chips_by_image: dict[Path, list[np.ndarray]]
) -> None:
    chips = _chips(chips_by_image, data)
    assert len(chips) > 150  # lfw10, people, scenes and hard: every face found
    # dlib runs one thread at about 0.1 s a face: split the faces over two processes.
    half = len(chips) // 2
    with ProcessPoolExecutor(2) as pool:
        reference = np.vstack(list(pool.map(_dlib_raw, [chips[:half], chips[half:]])))
    assert reference.shape == (len(chips), 128)
    onnx = shared_app.analyzer.embedder
    assert isinstance(onnx, OnnxEmbedder)
    ours = onnx.embed(chips)
    ref_unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cosine = np.sum(ref_unit * ours, axis=1)
    assert cosine.min() >= 0.9999, f"worst face: cosine {cosine.min():.6f}"


def test_batches_equal_single_runs(
    shared_app: Visage, data: Path, chips_by_image: dict[Path, list[np.ndarray]]
) -> None:
    chips = _chips(chips_by_image, data / "scenes")
    assert chips
    embedder = shared_app.analyzer.embedder
    together = embedder.embed(chips)
    alone = np.vstack([embedder.embed([c]) for c in chips])
    assert np.abs(together - alone).max() < 1e-5


def test_graph_is_cached_and_a_corrupt_cache_is_rebuilt(
    tmp_path: Path, data: Path, chips_by_image: dict[Path, list[np.ndarray]]
) -> None:
    chip = _chips(chips_by_image, data / "people/joe_biden")[0]
    first = OnnxEmbedder(tmp_path)
    expected = first.embed([chip])
    cached = first.cached_graph_path()
    assert cached is not None and cached.is_file()
    cached.write_bytes(b"not an onnx graph")
    again = OnnxEmbedder(tmp_path)
    assert np.allclose(again.embed([chip]), expected, atol=1e-6)
    assert cached.stat().st_size > 1_000_000


def test_reader_refuses_other_files(data: Path) -> None:
    with pytest.raises(DlibFormatError):
        read_dlib_net(b"\x01\x01\x01\x05hello")
    with pytest.raises(DlibFormatError):
        read_dlib_net((data / "people/joe_biden/1.jpg").read_bytes())
    whole = OnnxEmbedder().path.read_bytes()
    with pytest.raises(DlibFormatError, match="end of file"):
        read_dlib_net(whole[: len(whole) // 2])


def test_empty_batch() -> None:
    assert OnnxEmbedder().embed([]).shape == (0, 128)
