"""Issue 11, item 10: bad input is a 4xx, never a 5xx — a seeded, time-bounded fuzz test.

Real images from ``../shared/faces`` (JPEG, and re-encoded as PNG, 16-bit PNG, RGBA PNG,
WebP, BMP and TIFF) are mutated — bit flips, truncation, splices of another image, header
bytes rewritten, PNG chunks inserted (with valid CRCs, so the decoder believes them) — and fed
to the decoder, which may only return pixels or raise :class:`InputError`, and to the upload
routes (detect, identify, verify, enrol) over HTTP, which may only answer 2xx or 4xx.
``derandomize=True`` makes every run try the same inputs; ``max_examples`` keeps it to
seconds.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import DATA, make_app
from visage.api.app import create_app
from visage.core import Visage
from visage.errors import InputError
from visage.governance.access import Role
from visage.media.image import decode_image
from visage.usecases.keys import create_key
from visage.usecases.subjects import add_subject, make_consent

PURPOSE = "access-control"
MAX_PIXELS = 4_000_000
"""Small, so that mutated headers that announce big images stay cheap to refuse or decode."""


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _seeds() -> dict[str, bytes]:
    face = Image.open(DATA / "lfw10/Tony_Blair/Tony_Blair_0001.jpg").convert("RGB")
    small = face.crop((60, 50, 190, 200))
    gray16 = Image.fromarray(np.asarray(small.convert("L"), dtype=np.uint16) * 257)
    return {
        "jpeg": (DATA / "lfw10/Tony_Blair/Tony_Blair_0001.jpg").read_bytes(),
        "jpeg-exif": _encode(small, "JPEG", exif=_exif(), quality=80),
        "png": _encode(small, "PNG"),
        "png16": _encode(gray16, "PNG"),
        "rgba": _encode(small.convert("RGBA"), "PNG"),
        "palette": _encode(small.convert("P"), "PNG", transparency=0),
        "webp": _encode(small, "WEBP", quality=70),
        "bmp": _encode(small.resize((64, 74)), "BMP"),
        "tiff": _encode(small, "TIFF", compression="tiff_deflate"),
        "tiff-float": _encode(small.convert("F"), "TIFF"),
    }


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif


SEEDS = _seeds()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


CHUNK_KINDS = [b"IHDR", b"PLTE", b"tRNS", b"zTXt", b"iTXt", b"tEXt", b"iCCP", b"eXIf", b"IDAT"]


@functools.cache
def _deflated_zeros(n: int) -> bytes:
    """``n`` zero bytes, compressed (once: compressing 2 MB each time costs more than a try)."""
    return zlib.compress(b"\0" * n, 9)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real image, mutated one to four times."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for op in draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=4)):
        data = op(draw, data) if data else data
    return bytes(data)


def _flip(draw: st.DrawFn, data: bytearray) -> bytearray:
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    return data


def _truncate(draw: st.DrawFn, data: bytearray) -> bytearray:
    return data[: draw(st.integers(0, len(data) - 1))]


def _header(draw: st.DrawFn, data: bytearray) -> bytearray:
    """Rewrite a few bytes of the header, where sizes, depths and offsets live."""
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, min(len(data), 200) - 1))
        data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, data[pos] + 1 & 0xFF]))
    return data


def _splice(draw: st.DrawFn, data: bytearray) -> bytearray:
    """Insert a slice of another seed image at some position."""
    other = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    start = draw(st.integers(0, len(other) - 1))
    piece = other[start : start + draw(st.integers(1, 4096))]
    at = draw(st.integers(0, len(data)))
    return data[:at] + piece + data[at:]


def _png_chunk(draw: st.DrawFn, data: bytearray) -> bytearray:
    """A PNG chunk with a valid CRC after the signature+IHDR (or anywhere), sometimes a
    compressed one that inflates far past its size."""
    kind = draw(st.sampled_from(CHUNK_KINDS))
    if draw(st.booleans()):
        body = b"k\0\0" + _deflated_zeros(draw(st.sampled_from([10, 70_000, 2_000_000])))
    else:
        body = draw(st.binary(max_size=64))
    if kind == b"IHDR" and draw(st.booleans()):
        w, h = draw(st.integers(0, 70_000)), draw(st.integers(0, 70_000))
        depth, color = draw(st.sampled_from([1, 2, 4, 8, 16])), draw(st.integers(0, 7))
        body = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    at = 33 if draw(st.booleans()) else draw(st.integers(0, len(data)))
    return data[:at] + _chunk(kind, body) + data[at:]


OPS: list[Callable[[st.DrawFn, bytearray], bytearray]] = [
    _flip,
    _truncate,
    _header,
    _splice,
    _png_chunk,
]


def test_seeds_decode() -> None:
    for name, data in SEEDS.items():
        assert decode_image(data, max_pixels=MAX_PIXELS, max_bytes=10**7).pixels.ndim == 3, name


@settings(
    max_examples=1500,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated())
def test_decoder_raises_only_input_errors(data: bytes) -> None:
    try:
        loaded = decode_image(data, max_pixels=MAX_PIXELS, max_bytes=10**7)
    except InputError:
        return
    assert loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3


@pytest.fixture(scope="module")
def fuzz_client(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage
) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str], str]]:
    core = make_app(tmp_path_factory.mktemp("fuzz-home"), max_pixels=MAX_PIXELS, models=shared_app)
    operator = {"X-API-Key": create_key(core, Role.operator, [PURPOSE]).key}
    enroller = {"X-API-Key": create_key(core, Role.enroller, []).key}
    subject = add_subject(core, "Fuzz Target", make_consent("F-FUZZ", [PURPOSE])).id
    app = create_app(
        core,
        identify_per_minute=1_000_000,
        model_per_minute=1_000_000,
        housekeeping=False,
        watch_cameras=False,
    )
    with TestClient(app) as client:
        yield client, operator, enroller, subject
    core.close()


ROUTES = ["detect", "identify", "verify", "enrol"]


@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=mutated(), route=st.sampled_from(ROUTES), multipart=st.booleans())
def test_upload_routes_never_answer_5xx(
    fuzz_client: tuple[TestClient, dict[str, str], dict[str, str], str],
    data: bytes,
    route: str,
    multipart: bool,
) -> None:
    client, operator, enroller, subject = fuzz_client
    if route == "verify":
        r = client.post(
            f"/v1/verify?purpose={PURPOSE}",
            headers=operator,
            files={"image_a": data, "image_b": SEEDS["jpeg"]},
        )
    else:
        target, key = {
            "detect": ("/v1/detect", operator),
            "identify": (f"/v1/identify?purpose={PURPOSE}", operator),
            "enrol": (f"/v1/subjects/{subject}/templates", enroller),
        }[route]
        if multipart:
            r = client.post(target, headers=key, files={"image": data})
        else:
            r = client.post(target, headers=key, content=data)
    assert r.status_code < 500, (route, r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"
