"""The picture an operator sees after a 1:N search: every face that is not a released match
masked, then boxes and labels drawn for the faces that are.

Order matters: the masking is done first, at full resolution, on a copy; only then is the
picture shrunk for display and the labels drawn, so no label can keep a bystander's face
visible and nothing of the original file (EXIF, GPS, thumbnails) is carried over — the JPEG
is encoded from decoded pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from visage.media.blur import mask_faces
from visage.media.crops import encode_image
from visage.vision.types import Box, RGBImage

DISPLAY_MAX_SIDE = 1280
"""The longer side of the picture shown (larger inputs are shrunk after masking)."""

ANNOTATED_JPEG_QUALITY = 85

MATCH_COLOUR = (11, 92, 173)  # the console's accent blue: AA contrast with white text
PENDING_COLOUR = (125, 78, 0)  # the console's warning brown


@dataclass(frozen=True, slots=True)
class Label:
    """A box to outline and the text to print above it (a name and score, or a status)."""

    box: Box
    text: str
    pending: bool = False


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the small bitmap font
        return ImageFont.load_default()


def _scaled(box: Box, factor: float) -> tuple[int, int, int, int]:
    return (
        round(box.left * factor),
        round(box.top * factor),
        round(box.right * factor),
        round(box.bottom * factor),
    )


def annotate(
    pixels: RGBImage,
    labels: Sequence[Label],
    masked: Sequence[Box],
    *,
    max_side: int = DISPLAY_MAX_SIDE,
) -> bytes:
    """JPEG of ``pixels`` with every box of ``masked`` masked, then ``labels`` drawn.

    A box may be both masked and labelled (a watchlist candidate still awaiting review: its
    place is shown, its face is not). ``pixels`` is left untouched.
    """
    canvas = pixels.copy()
    mask_faces(canvas, masked)
    height, width = canvas.shape[:2]
    factor = min(1.0, max_side / max(width, height, 1))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        canvas = np.asarray(cv2.resize(canvas, size, interpolation=cv2.INTER_AREA), np.uint8)
    if labels:
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        shown_w, shown_h = image.size
        line = max(2, round(max(shown_w, shown_h) / 400))
        font = _font(max(12, round(max(shown_w, shown_h) / 60)))
        for label in labels:
            colour = PENDING_COLOUR if label.pending else MATCH_COLOUR
            x0, y0, x1, y1 = _scaled(label.box, factor)
            draw.rectangle((x0, y0, x1, y1), outline=colour, width=line)
            left, top, right, bottom = draw.textbbox((0, 0), label.text, font=font)
            tw, th = right - left + 2 * line, bottom - top + 2 * line
            tx = min(max(0, x0), max(0, shown_w - tw))
            ty = y0 - th if y0 - th >= 0 else min(y1, shown_h - th)
            draw.rectangle((tx, ty, tx + tw, ty + th), fill=colour)
            draw.text((tx + line - left, ty + line - top), label.text, fill="white", font=font)
        canvas = np.asarray(image, np.uint8)
    return encode_image(canvas, ".jpg", jpeg_quality=ANNOTATED_JPEG_QUALITY)
