"""The exact vector index."""

from __future__ import annotations

import numpy as np
import pytest

from visage.gallery.index import ExactIndex
from visage.gallery.matching import DEFAULT_THRESHOLD, calibrate, calibrate_array, cosine_for


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_returns_best_label_once_per_subject() -> None:
    rng = np.random.default_rng(0)
    vecs = _unit(rng, 6)
    index = ExactIndex()
    index.add(["a", "a", "b", "b", "c", "c"], vecs)
    hits = index.search(vecs[2:3], k=2)[0]
    assert hits[0].label == "b"
    assert hits[0].cosine == pytest.approx(1.0, abs=1e-5)
    assert len({h.label for h in hits}) == 2


def test_remove_takes_effect_at_once() -> None:
    rng = np.random.default_rng(1)
    vecs = _unit(rng, 3)
    index = ExactIndex()
    index.add(["a", "b", "c"], vecs)
    assert index.remove("b") == 1
    assert len(index) == 2
    assert all(h.label != "b" for h in index.search(vecs[1:2], k=3)[0])


def test_empty_index_and_bad_shapes() -> None:
    index = ExactIndex()
    assert index.search(np.zeros((2, 128), np.float32), 3) == [[], []]
    with pytest.raises(ValueError):
        index.add(["a"], np.zeros((2, 128), np.float32))


def test_calibration_is_monotonic_and_invertible() -> None:
    cos = np.linspace(0.5, 1.0, 101, dtype=np.float32)
    scores = calibrate_array(cos)
    assert np.all(np.diff(scores) >= 0)
    assert calibrate(cosine_for(DEFAULT_THRESHOLD)) == pytest.approx(DEFAULT_THRESHOLD)
    assert 0.0 <= calibrate(-1.0) < 1e-6 and calibrate(1.0) > 0.999
