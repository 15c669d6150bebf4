"""The operator's picture: bystanders masked at full resolution before any label is drawn,
large inputs shrunk for display, nothing of the input file carried over."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from visage.media.annotate import DISPLAY_MAX_SIDE, Label, annotate
from visage.media.image import decode_image
from visage.vision.types import Box

SCENE = "scenes/obama_and_biden.jpg"  # 2000 x 1428: shrunk for display


def decoded(jpeg: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))


def sharpness(pixels: np.ndarray) -> float:
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def test_masked_boxes_lose_their_detail_and_labelled_ones_keep_it(data: Path) -> None:
    raw = (data / SCENE).read_bytes()
    pixels = decode_image(raw, max_pixels=50_000_000, max_bytes=50_000_000).pixels
    original = pixels.copy()
    h, w = pixels.shape[:2]
    # Two regions of real texture: one stands for a bystander, one for a labelled match.
    hidden = Box(w * 0.55, h * 0.15, w * 0.75, h * 0.45)
    kept = Box(w * 0.15, h * 0.15, w * 0.35, h * 0.45)
    jpeg = annotate(pixels, [Label(kept, "1: Ada 0.987")], [hidden])
    assert np.array_equal(pixels, original), "the input is left untouched"
    assert jpeg[:2] == b"\xff\xd8" and b"Exif" not in jpeg[:64]
    shown = decoded(jpeg)
    factor = DISPLAY_MAX_SIDE / max(w, h)
    assert max(shown.shape[:2]) == DISPLAY_MAX_SIDE
    small = cv2.resize(original, (shown.shape[1], shown.shape[0]), interpolation=cv2.INTER_AREA)

    def middle(image: np.ndarray, box: Box) -> np.ndarray:
        x0, y0 = round(box.left * factor), round(box.top * factor)
        x1, y1 = round(box.right * factor), round(box.bottom * factor)
        dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
        return image[y0 + dy : y1 - dy, x0 + dx : x1 - dx]

    assert sharpness(middle(shown, hidden)) < 0.1 * sharpness(middle(small, hidden))
    diff = np.abs(middle(shown, kept).astype(float) - middle(small, kept).astype(float))
    assert float(diff.mean()) < 6


def test_a_pending_candidate_is_outlined_but_stays_masked() -> None:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)  # all detail
    box = Box(100, 100, 220, 240)
    shown = decoded(annotate(pixels, [Label(box, "1", pending=True)], [box]))
    assert shown.shape == pixels.shape
    inside = shown[150:200, 140:180]
    assert sharpness(inside) < 0.05 * sharpness(pixels[150:200, 140:180])
    # The outline is drawn in the pending colour on the box edge.
    edge = shown[170, 100].astype(int)
    assert abs(edge[0] - 125) < 40 and abs(edge[1] - 78) < 40 and edge[2] < 60
