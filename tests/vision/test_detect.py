"""The CenterFace detector's graph with dynamic sizes is converted once, cached, and read
back by later processes; a damaged cache file is rebuilt, never trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visage.core import Visage
from visage.vision.detect import CenterFaceDetector


def test_graph_is_cached_reused_and_a_corrupt_cache_is_rebuilt(
    tmp_path: Path, data: Path, shared_app: Visage
) -> None:
    pixels = shared_app.load_image(data / "scenes/two_people.jpg").pixels
    first = CenterFaceDetector(cache_dir=tmp_path)
    expected = first.detect(pixels)
    assert len(expected) == 2
    cached = first.cached_graph_path()
    assert cached is not None and cached.is_file()
    written = cached.stat().st_mtime_ns

    # A later process opens the cached file as it is (by path, no conversion).
    again = CenterFaceDetector(cache_dir=tmp_path).detect(pixels)
    assert cached.stat().st_mtime_ns == written
    assert [d.box for d in again] == [d.box for d in expected]

    cached.write_bytes(b"not an onnx graph")
    rebuilt = CenterFaceDetector(cache_dir=tmp_path).detect(pixels)
    assert [d.box for d in rebuilt] == [d.box for d in expected]
    for a, b in zip(rebuilt, expected, strict=True):
        assert np.array_equal(a.landmarks, b.landmarks)
    assert cached.stat().st_size > 1_000_000


def test_without_cache_dir_nothing_is_written(data: Path, shared_app: Visage) -> None:
    detector = CenterFaceDetector()
    assert detector.cached_graph_path() is None
    pixels = shared_app.load_image(data / "lfw10/Tony_Blair/Tony_Blair_0001.jpg").pixels
    found = detector.detect(pixels)
    assert len(found) >= 1 and found[0].score > 0.5
