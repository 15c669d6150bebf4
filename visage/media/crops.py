"""Pixels out: the probe crop a reviewer sees, the reference crop kept at enrolment, and
images re-encoded for writing.

All start from decoded pixels, never from the input file's bytes, so nothing of the
original container (EXIF, GPS, thumbnails) survives; the crop masks every other face of the
frame before cutting, so a reviewer sees only the candidate.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2

from visage.errors import InputError
from visage.media.blur import expand, mask_faces
from visage.vision.types import Box, RGBImage

PROBE_MARGIN = 0.4
"""Margin around the face in a probe crop, as a fraction of the face box on each side."""

PROBE_JPEG_QUALITY = 90

REFERENCE_JPEG_QUALITY = 90
"""The reference crop is the embedder's aligned 150x150 chip: about 5-8 kB at this quality."""


def encode_image(pixels: RGBImage, suffix: str, *, jpeg_quality: int | None = None) -> bytes:
    """``pixels`` (RGB) encoded in the format named by ``suffix`` (``.jpg``, ``.png``, …)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if jpeg_quality is not None else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InputError(f"cannot encode an image as {suffix}")
    return bytes(data.tobytes())


def probe_crop(pixels: RGBImage, face: Box, others: Iterable[Box] = ()) -> bytes:
    """JPEG of ``face`` with a margin, every box in ``others`` masked first.

    ``pixels`` is left untouched: the masking happens on a copy.
    """
    canvas = pixels.copy()
    mask_faces(canvas, list(others))
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = expand(face, PROBE_MARGIN, w, h)
    try:
        return encode_image(canvas[y0:y1, x0:x1], ".jpg", jpeg_quality=PROBE_JPEG_QUALITY)
    except InputError:
        return b""  # an empty crop (a box outside the frame): the review shows no image


def reference_crop(chip: RGBImage) -> bytes:
    """JPEG of an aligned face chip (the one the template was computed from): the reference
    a reviewer compares a probe with. The chip is cut tight around the one enrolled face;
    the enrolment photo itself is not kept."""
    return encode_image(chip, ".jpg", jpeg_quality=REFERENCE_JPEG_QUALITY)
