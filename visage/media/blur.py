"""Irreversible face masking that no face detector can see through.

A plain Gaussian blur can be partly undone (deconvolution) when the blurred pixels are
exact, and even a heavy blur keeps what a detector or a recogniser keys on: the outline of
the head and its low-frequency shading (dark eye band, lit forehead, shadowed jaw). A HOG
detector still finds such a blob, and a descriptor computed on it may stay close to the
person's. So every mode here:

- covers the whole head, not the detector's face box: an ellipse (or box) grown by
  ``margin`` of the box's size on each side (0.25: 1.5x the box, hair and ears included);
- throws the face's structure away before anything is drawn: the region is reduced to its
  mean colour plus at most ``CELLS`` x ``CELLS`` cells whose deviation from the mean is
  flattened to ``SHADING`` of what it was (gaussian), or to cells shuffled out of place
  (pixelate), or to one flat colour (solid);
- blends in with a soft edge (ellipse), so that the mask's own outline is no sharp
  head-shaped contour either.

Nothing of the face below the cell resolution, nor its layout, survives in the output.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from numpy.typing import NDArray

from visage.media.image import RGBImage
from visage.media.modes import BlurMode, MaskShape
from visage.vision.types import Box

MARGIN = 0.25
"""Default growth of a face box per side: the mask covers 1.5x the box, the whole head."""
CELLS = 3
"""Cells across the region that keep a trace of its colours (gaussian, pixelate)."""
SHADING = 0.25
"""Share of each cell's deviation from the region's mean colour that is kept (gaussian)."""
FEATHER = 0.2
"""Outer share of the ellipse's radius over which the mask fades into the picture."""
SOLID_COLOUR = (0, 0, 0)
WORK = 48
"""Longer side, in pixels, of the grid on which a region's smooth mask is computed."""

_SHUFFLE = np.random.default_rng(0x5EED).permutation(CELLS * CELLS)
"""A fixed permutation of the pixelate cells: the same look on every frame (no flicker)."""

__all__ = ["BlurMode", "MaskShape", "expand", "mask_faces"]


def expand(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The box grown by ``margin`` of its size on each side, clipped to the image."""
    mx, my = box.width * margin, box.height * margin
    x0 = max(0, int(np.floor(box.left - mx)))
    y0 = max(0, int(np.floor(box.top - my)))
    x1 = min(width, int(np.ceil(box.right + mx)))
    y1 = min(height, int(np.ceil(box.bottom + my)))
    return x0, y0, x1, y1


def _cells(patch: RGBImage) -> NDArray[np.float32]:
    """The region's colours on a ``CELLS`` x ``CELLS`` grid (area averages)."""
    return np.asarray(
        cv2.resize(patch, (CELLS, CELLS), interpolation=cv2.INTER_AREA), np.float32
    ).reshape(CELLS, CELLS, -1)


def _work_size(w: int, h: int) -> tuple[int, int]:
    """The size at which a region's smooth mask is computed: at most ``WORK`` on its longer
    side. The mask has no detail finer than a ninth of the region (a 3x3 grid, then a blur
    of a third of its side), so computing it small and enlarging it loses nothing, and its
    cost no longer grows with the face's area."""
    scale = min(1.0, WORK / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _masked_patch(patch: RGBImage, mode: BlurMode) -> RGBImage:
    """What replaces the region (same size, uint8): see the module's docstring."""
    h, w = patch.shape[:2]
    if mode is BlurMode.solid:
        solid = np.empty_like(patch)
        solid[...] = SOLID_COLOUR
        return solid
    cells = _cells(patch)
    mean = cells.reshape(-1, cells.shape[-1]).mean(axis=0)
    if mode is BlurMode.pixelate:
        # Cells out of place: the palette of the region stays, the face's layout is gone.
        flat = cells.reshape(CELLS * CELLS, -1)[_SHUFFLE].reshape(cells.shape)
        flat = np.clip(mean + (flat - mean) * 0.5 + 0.5, 0, 255).astype(np.uint8)
        return np.asarray(cv2.resize(flat, (w, h), interpolation=cv2.INTER_NEAREST), np.uint8)
    flat = mean + (cells - mean) * SHADING
    sw, sh = _work_size(w, h)
    smooth = cv2.resize(flat, (sw, sh), interpolation=cv2.INTER_LINEAR)
    # The blur of a third of the region's shorter side (OpenCV's sigma for that kernel),
    # at the working size.
    k = max(3, (min(w, h) // 3) | 1)
    sigma = (0.3 * ((k - 1) * 0.5 - 1) + 0.8) * sw / w
    smooth = cv2.GaussianBlur(smooth, (0, 0), sigma) if sigma >= 0.3 else smooth
    small = np.clip(np.asarray(smooth, np.float32) + 0.5, 0, 255).astype(np.uint8)
    full = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.asarray(full, np.uint8).reshape(patch.shape)


def _ellipse_alpha(
    x0: int, y0: int, x1: int, y1: int, cx: float, cy: float, rx: float, ry: float
) -> NDArray[np.float32]:
    """Opacity of the ellipse over the clipped region: 1 inside ``1 - FEATHER`` of its
    radius, fading to 0 at its edge."""
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) / ry
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) / rx
    r = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return np.asarray(np.clip((1.0 - r) / FEATHER, 0.0, 1.0), np.float32)


def mask_faces(
    pixels: RGBImage,
    boxes: Iterable[Box],
    *,
    mode: BlurMode = BlurMode.gaussian,
    shape: MaskShape = MaskShape.ellipse,
    margin: float = MARGIN,
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
            # The ellipse of the grown box, unclipped: a face at the border keeps its shape.
            cx = (box.left + box.right) / 2
            cy = (box.top + box.bottom) / 2
            rx = box.width * (0.5 + margin)
            ry = box.height * (0.5 + margin)
            alpha = _ellipse_alpha(x0, y0, x1, y1, cx, cy, rx, ry)
            region[...] = cv2.blendLinear(region, masked, 1.0 - alpha, alpha)
        else:
            region[...] = masked
        n += 1
    return n
