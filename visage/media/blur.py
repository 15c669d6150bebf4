"""Irreversible face masking.

A plain Gaussian blur can be partly undone (deconvolution) when the blurred pixels are
exact. Every mode here first throws the information away — the region is reduced to at most
``DETAIL`` cells across, or replaced by one colour — and only then smoothed for looks, so
nothing of the face below that resolution survives in the output.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import cv2
import numpy as np

from visage.media.image import RGBImage
from visage.vision.types import Box

DETAIL = 6
"""Cells across the face that survive masking: too few to recognise anyone."""


class BlurMode(StrEnum):
    gaussian = "gaussian"
    pixelate = "pixelate"
    solid = "solid"


class MaskShape(StrEnum):
    ellipse = "ellipse"
    box = "box"


def expand(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The box grown by ``margin`` of its size on each side, clipped to the image."""
    mx, my = box.width * margin, box.height * margin
    x0 = max(0, int(np.floor(box.left - mx)))
    y0 = max(0, int(np.floor(box.top - my)))
    x1 = min(width, int(np.ceil(box.right + mx)))
    y1 = min(height, int(np.ceil(box.bottom + my)))
    return x0, y0, x1, y1


def _masked_patch(patch: RGBImage, mode: BlurMode) -> RGBImage:
    h, w = patch.shape[:2]
    if mode is BlurMode.solid:
        return np.zeros_like(patch)
    cells = max(1, min(DETAIL, w, h))
    small = cv2.resize(patch, (cells, max(1, round(cells * h / w))), interpolation=cv2.INTER_AREA)
    if mode is BlurMode.pixelate:
        return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST), np.uint8)
    smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(w, h) // 4) | 1)
    return np.asarray(cv2.GaussianBlur(smooth, (k, k), 0), np.uint8)


def mask_faces(
    pixels: RGBImage,
    boxes: Iterable[Box],
    *,
    mode: BlurMode = BlurMode.gaussian,
    shape: MaskShape = MaskShape.ellipse,
    margin: float = 0.15,
) -> int:
    """Mask every box in ``pixels`` in place; returns how many regions were masked."""
    height, width = pixels.shape[:2]
    n = 0
    for box in boxes:
        x0, y0, x1, y1 = expand(box, margin, width, height)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        region = pixels[y0:y1, x0:x1]
        masked = _masked_patch(region, mode)
        if shape is MaskShape.ellipse:
            sel = np.zeros(region.shape[:2], np.uint8)
            rect = (((x1 - x0) / 2, (y1 - y0) / 2), (float(x1 - x0), float(y1 - y0)), 0.0)
            cv2.ellipse(sel, rect, 1, -1)
            np.copyto(region, masked, where=sel[..., None].astype(bool))
        else:
            region[...] = masked
        n += 1
    return n
