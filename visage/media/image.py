"""Safe image decoding: every way an image file can be wrong becomes one clear InputError.

The order of checks matters: size on disk, then the header (format and pixel count), and
only then the pixels, so that a decompression bomb is refused before it is decoded.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from visage.errors import ImageTooLargeError, InputError

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF"})

RGBImage = NDArray[np.uint8]


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
    :class:`ImageTooLargeError` when the header announces more than ``max_pixels`` pixels.
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
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(
                f"{source}: the header announces far more than {max_pixels / 1e6:.1f} "
                "megapixels; refused before decoding"
            ) from exc
        except OSError as exc:
            raise InputError(f"{source}: truncated or corrupt image header ({exc})") from exc
        with img:
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
            try:
                img.load()
                oriented = ImageOps.exif_transpose(img)
                pixels = _to_rgb_array(oriented if oriented is not None else img)
            except Image.DecompressionBombError as exc:
                raise ImageTooLargeError(f"{source}: image is too large to decode safely") from exc
            except (OSError, SyntaxError, ValueError) as exc:
                raise InputError(f"{source}: truncated or corrupt image data ({exc})") from exc
    return LoadedImage(pixels=pixels, format=fmt, sha256=digest, source=source)


def _to_rgb_array(img: Image.Image) -> RGBImage:
    """Any Pillow mode to RGB uint8: 16-bit and float scaled, alpha composited on white."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if mode == "F":
            lo = float(arr.min())
            span = max(float(arr.max()) - lo, 1e-12)
            gray = ((arr - lo) / span * 255.0).round()
        else:
            gray = (np.clip(arr, 0, hi) / hi * 255.0).round()
        g8 = gray.astype(np.uint8)
        return np.ascontiguousarray(np.stack([g8, g8, g8], axis=-1))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
