"""Safe image decoding: every way an image file can be wrong becomes one clear InputError.

The order of checks matters: size on disk, then the header (format, pixel count, decoded
bytes at the image's bit depth and channels), and only then the pixels, so that a
decompression bomb is refused before it is decoded. Whatever a decoder raises on hostile bytes
becomes an InputError (422) or ImageTooLargeError (413), never an unexpected exception.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

from visage.errors import ImageTooLargeError, InputError
from visage.vision.types import RGBImage as RGBImage  # re-exported: its old home

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF"})

RGB_BYTES_PER_PIXEL = 3
"""The decoded-size budget is ``max_pixels`` times this: an 8-bit RGB image at the limit."""

DEEP_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})

BAND_PIXELS = 1 << 18
"""Deep (16- and 32-bit) images are converted this many pixels at a time, so that the
conversion needs no full-size temporary beyond its 8-bit RGB result."""


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """Decoded pixels (H x W x 3, RGB, uint8, EXIF orientation applied) and facts about them."""

    pixels: RGBImage
    format: str
    sha256: str
    source: str

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def read_image_file(path: str | Path, *, max_pixels: int, max_bytes: int) -> LoadedImage:
    """Read and decode an image file; see :func:`decode_image`."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p}: empty file (0 bytes)")
    if size > max_bytes:
        raise InputError(f"{p}: file is {size} bytes, more than the limit of {max_bytes}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot be read ({exc.strerror or exc})") from exc
    return decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes, source=str(p))


def decode_image(
    data: bytes, *, max_pixels: int, max_bytes: int, source: str = "<upload>"
) -> LoadedImage:
    """Decode image bytes into RGB uint8 pixels.

    Raises :class:`InputError` for empty, oversized, unknown, truncated or corrupt input and
    :class:`ImageTooLargeError` when the header announces more than ``max_pixels`` pixels,
    more decoded bytes than an 8-bit RGB image of ``max_pixels`` (see :func:`decoded_bytes`),
    or a metadata chunk that decompresses past Pillow's safety limit. No other exception
    leaves this function: whatever a decoder raises on hostile bytes is bad input.
    The format is sniffed from the bytes; file names and declared types are never trusted.
    """
    if not data:
        raise InputError(f"{source}: empty file (0 bytes)")
    if len(data) > max_bytes:
        raise InputError(f"{source}: {len(data)} bytes, more than the limit of {max_bytes}")
    digest = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings():
        # Pillow's own bomb warning is redundant with our explicit pixel check.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise InputError(
                f"{source}: not a supported image (expected JPEG, PNG, WebP, BMP or TIFF)"
            ) from exc
        except Exception as exc:  # a decoder's error on hostile bytes is bad input
            raise _refusal(exc, source, "header", max_pixels) from exc
        with img:
            _check_header(img, source, max_pixels)
            fmt = img.format or "unknown"
            try:
                img.load()
                oriented = ImageOps.exif_transpose(img)
                pixels = _to_rgb_array(oriented if oriented is not None else img)
            except Exception as exc:  # likewise
                raise _refusal(exc, source, "data", max_pixels) from exc
    return LoadedImage(pixels=pixels, format=fmt, sha256=digest, source=source)


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """Bytes the decoded pixels take at the image's own bit depth and channel count
    (``I;16``: 2 a pixel, ``RGBA``/``CMYK``/``I``/``F``: 4, ``RGB``: 3, ``L``: 1), read from
    the header before any pixel is decoded. Unknown modes count as 4 bytes a pixel."""
    try:
        desc = ImageMode.getmode(mode)
        per_pixel = len(desc.bands) * np.dtype(desc.typestr).itemsize
    except (KeyError, TypeError, ValueError):
        per_pixel = 4
    return width * height * per_pixel


def decoded_budget(max_pixels: int) -> int:
    """The decoded-size budget: what an 8-bit RGB image of ``max_pixels`` pixels takes."""
    return max_pixels * RGB_BYTES_PER_PIXEL


def _check_header(img: Image.Image, source: str, max_pixels: int) -> None:
    """Format, dimensions and decoded size from the header: refused before decoding."""
    fmt = img.format or "unknown"
    if fmt not in SUPPORTED_FORMATS:
        raise InputError(f"{source}: image format {fmt} is not supported")
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InputError(f"{source}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{source}: {width}x{height} is {width * height / 1e6:.1f} megapixels, "
            f"more than the limit of {max_pixels / 1e6:.1f}; refused before decoding"
        )
    size = decoded_bytes(img.mode, width, height)
    budget = decoded_budget(max_pixels)
    if size > budget:
        raise ImageTooLargeError(
            f"{source}: {width}x{height} in mode {img.mode} decodes to {size / 1e6:.0f} MB, "
            f"more than the limit of {budget / 1e6:.0f} MB (an 8-bit RGB image of "
            f"{max_pixels / 1e6:.1f} megapixels); refused before decoding"
        )


def _refusal(exc: Exception, source: str, where: str, max_pixels: int) -> InputError:
    """The error a decoder's exception stands for: too large (413) or unusable (422)."""
    if isinstance(exc, InputError):
        return exc
    if isinstance(exc, Image.DecompressionBombError):
        return ImageTooLargeError(
            f"{source}: the image announces far more than {max_pixels / 1e6:.1f} "
            "megapixels; refused before decoding"
        )
    if isinstance(exc, ValueError) and "decompressed data too large" in str(exc).lower():
        # PNG text (zTXt, iTXt) or ICC profile chunks that inflate past Pillow's limit.
        return ImageTooLargeError(
            f"{source}: a metadata chunk decompresses to more than the safety limit; refused"
        )
    if isinstance(exc, MemoryError):
        return ImageTooLargeError(f"{source}: image is too large to decode")
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return InputError(f"{source}: truncated or corrupt image {where} ({detail})")


def _to_rgb_array(img: Image.Image) -> RGBImage:
    """Any Pillow mode to RGB uint8: 16-bit and float scaled, alpha composited on white."""
    mode = img.mode
    if mode in DEEP_MODES:
        return _deep_to_rgb(img)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _deep_to_rgb(img: Image.Image) -> RGBImage:
    """16-bit, 32-bit integer and float grayscale to 8-bit RGB, scaled (16-bit: full range;
    ``I``: 0..max; ``F``: min..max), band by band: a full-size float copy of a large image
    would cost many times its decoded size."""
    width, height = img.size
    if img.mode.startswith("I;16"):
        lo, hi = 0.0, 65535.0
    else:
        extrema = img.getextrema()
        lo, hi = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = 0.0, 1.0
        if img.mode == "I":
            lo, hi = 0.0, max(hi, 1.0)
    scale = 255.0 / max(hi - lo, 1e-12)
    out = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, BAND_PIXELS // width)
    with np.errstate(over="ignore", invalid="ignore"):  # extreme floats saturate
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            band = np.array(img.crop((0, top, width, bottom)), dtype=np.float32)
            np.nan_to_num(band, copy=False, nan=lo, posinf=hi, neginf=lo)
            np.subtract(band, lo, out=band)
            np.multiply(band, scale, out=band)
            np.nan_to_num(band, copy=False, nan=0.0)
            np.clip(band, 0.0, 255.0, out=band)
            np.rint(band, out=band)
            out[top:bottom] = band.astype(np.uint8)[..., None]
    return out
