"""Image decoding: formats, orientation, bit depths, and every kind of bad file."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visage.errors import ImageTooLargeError, InputError
from visage.media.image import decode_image, read_image_file

LIMITS = {"max_pixels": 40_000_000, "max_bytes": 50 * 1024 * 1024}


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def portrait(data: Path) -> Image.Image:
    return Image.open(data / "lfw10/Tony_Blair/Tony_Blair_0001.jpg").convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_supported_formats_decode_to_rgb(portrait: Image.Image, fmt: str) -> None:
    loaded = decode_image(_encode(portrait, fmt), **LIMITS)
    assert loaded.pixels.shape == (250, 250, 3)
    assert loaded.pixels.dtype == np.uint8
    assert loaded.format == fmt


def test_grayscale_becomes_three_equal_channels(portrait: Image.Image) -> None:
    loaded = decode_image(_encode(portrait.convert("L"), "PNG"), **LIMITS)
    px = loaded.pixels
    assert px.shape == (250, 250, 3)
    assert np.array_equal(px[..., 0], px[..., 1]) and np.array_equal(px[..., 1], px[..., 2])


def test_sixteen_bit_grayscale_is_scaled_not_clipped(portrait: Image.Image) -> None:
    gray16 = (np.asarray(portrait.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    img = Image.fromarray(gray16)
    assert img.mode.startswith("I;16")
    loaded = decode_image(_encode(img, "PNG"), **LIMITS)
    original = np.asarray(portrait.convert("L"), dtype=np.int16)
    assert np.abs(loaded.pixels[..., 0].astype(np.int16) - original).max() <= 1


def test_rgba_is_composited(data: Path) -> None:
    loaded = read_image_file(data / "hard/rgba_32bit.png", **LIMITS)
    assert loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3


def test_exif_orientation_is_applied(portrait: Image.Image) -> None:
    rotated = portrait.rotate(90, expand=True)  # stored turned a quarter counter-clockwise...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with "rotate 90 clockwise to display" recorded
    loaded = decode_image(_encode(rotated, "JPEG", exif=exif, quality=95), **LIMITS)
    upright = np.asarray(portrait, dtype=np.int16)
    assert loaded.pixels.shape == upright.shape
    assert np.abs(loaded.pixels.astype(np.int16) - upright).mean() < 6


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.jpg"
    f.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image_file(f, **LIMITS)


def test_truncated_jpeg(tmp_path: Path, data: Path) -> None:
    raw = (data / "people/barack_obama/1.jpg").read_bytes()
    f = tmp_path / "truncated.jpg"
    f.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_image_file(f, **LIMITS)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    f = tmp_path / "notes.jpg"
    f.write_text("this is not an image\n")
    with pytest.raises(InputError, match="not a supported image"):
        read_image_file(f, **LIMITS)


def test_unsupported_format_is_refused(portrait: Image.Image) -> None:
    with pytest.raises(InputError, match="not supported"):
        decode_image(_encode(portrait, "GIF"), **LIMITS)


def huge_png(path: Path, side: int = 20_000) -> Path:
    """A valid black 1-bit PNG of ``side`` x ``side`` pixels, small on disk. Written chunk by
    chunk, its rows compressed as a stream: the same image as Pillow's
    ``Image.new("1", (side, side)).save(path, "PNG")``, without the 50 MB image in memory and
    its compression in one piece (0.8 s here instead of 3.5 s)."""
    row = bytes(1 + (side + 7) // 8)  # filter type 0, then the row's packed bits
    rows_per_block = 1000
    stream = zlib.compressobj(9)
    body = [stream.compress(row * rows_per_block) for _ in range(side // rows_per_block)]
    body += [stream.compress(row * (side % rows_per_block)), stream.flush()]
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, grey, no interlace
    with path.open("wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        for kind, payload in ((b"IHDR", header), (b"IDAT", b"".join(body)), (b"IEND", b"")):
            crc = zlib.crc32(kind + payload)
            f.write(struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc))
    return path


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    f = huge_png(tmp_path / "huge.png")
    assert f.stat().st_size < 5_000_000  # small on disk, 400 megapixels inside
    with pytest.raises(ImageTooLargeError, match="refused before decoding"):
        read_image_file(f, **LIMITS)


def test_pixel_limit_is_configurable(portrait: Image.Image) -> None:
    with pytest.raises(ImageTooLargeError):
        decode_image(_encode(portrait, "PNG"), max_pixels=250 * 249, max_bytes=10**8)


def test_byte_limit(tmp_path: Path, data: Path) -> None:
    with pytest.raises(InputError, match="more than the limit"):
        read_image_file(data / "people/barack_obama/1.jpg", max_pixels=10**8, max_bytes=1000)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_image_file(tmp_path / "nope.jpg", **LIMITS)
    with pytest.raises(InputError, match="not a regular file"):
        read_image_file(tmp_path, **LIMITS)


@pytest.mark.parametrize("mode", ["F", "I", "I;16"])
def test_deep_modes_are_scaled_band_by_band(mode: str) -> None:
    """Taller than one conversion band, so the bands must join without a seam."""
    ramp = np.tile(np.linspace(0, 1, 600, dtype=np.float64), (500, 1))
    if mode == "F":
        values = (ramp * 3.5 - 1.0).astype(np.float32)  # min..max is stretched to 0..255
        img, fmt = Image.fromarray(values, "F"), "TIFF"
        expected = np.rint(ramp * 255)
    elif mode == "I":
        values = (ramp * 1_000_000).astype(np.int32)  # 0..max is stretched to 0..255
        img, fmt = Image.fromarray(values, "I"), "TIFF"
        expected = np.rint(ramp * 255)
    else:
        values = (ramp * 65535).astype(np.uint16)  # the full 16-bit range maps to 0..255
        img, fmt = Image.fromarray(values), "PNG"
        expected = np.rint(values / 65535 * 255)
    loaded = decode_image(_encode(img, fmt), **LIMITS)
    assert loaded.pixels.shape == (500, 600, 3)
    assert np.abs(loaded.pixels[..., 1].astype(np.int16) - expected).max() <= 1
    assert np.array_equal(loaded.pixels[..., 0], loaded.pixels[..., 2])
