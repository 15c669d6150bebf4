"""The fast path of masking gives the same pixels as the plain one: the gaussian mask
computed on a small grid and enlarged equals the mask computed at full resolution, and
nothing outside the region changes. Whether masks hide faces is judged in test_masks.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from visage.core import Visage
from visage.media.blur import CELLS, MARGIN, SHADING, BlurMode, MaskShape, expand, mask_faces


def _full_resolution_gaussian(region: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The gaussian mask as first written: every step at the region's own size."""
    h, w = region.shape[:2]
    cells = cv2.resize(region, (CELLS, CELLS), interpolation=cv2.INTER_AREA).astype(np.float32)
    mean = cells.reshape(-1, 3).mean(axis=0)
    smooth = cv2.resize(mean + (cells - mean) * SHADING, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(w, h) // 3) | 1)
    blurred = cv2.GaussianBlur(smooth, (k, k), 0)
    return np.clip(blurred + 0.5, 0, 255).astype(np.uint8)


def test_small_grid_mask_equals_full_resolution(shared_app: Visage, data: Path) -> None:
    """The largest faces of the test data (up to 224 px; regions up to ~340 px)."""
    pixels = shared_app.load_image(data / "scenes/obama_and_biden.jpg").pixels
    detections = shared_app.analyzer.detector.detect(pixels, 0.25)
    assert len(detections) >= 2
    height, width = pixels.shape[:2]
    for det in detections:
        x0, y0, x1, y1 = expand(det.box, MARGIN, width, height)
        assert max(x1 - x0, y1 - y0) > 100  # large enough that the grid is smaller
        masked = pixels.copy()
        assert mask_faces(masked, [det.box], mode=BlurMode.gaussian, shape=MaskShape.box) == 1
        region = masked[y0:y1, x0:x1].astype(np.int16)
        reference = _full_resolution_gaussian(pixels[y0:y1, x0:x1])
        assert np.abs(region - reference).max() <= 3
        # and the face itself is gone: the region is far from the original
        assert np.abs(region - pixels[y0:y1, x0:x1]).mean() > 10
        outside = np.ones(pixels.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(masked[outside], pixels[outside])
