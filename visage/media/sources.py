"""Video sources: which ones a remote caller may name, and how their secrets are hidden.

Pure functions, no I/O. A camera source given through the API reaches FFmpeg, whose URL
syntax opens far more than cameras (``file:``, ``concat:``, ``subfile,``, ``pipe:``,
``data:`` …), so it must pass an allow-list first: ``rtsp://``, ``rtsps://``, ``http://``,
``https://`` with a host, or a local video device (``/dev/videoN`` or an index). Anything
else — other schemes, plain paths, whitespace or control characters, schemes without
``//`` — is refused before FFmpeg sees it. Network sources are then opened with an FFmpeg
``protocol_whitelist`` that holds only what their scheme needs (:func:`protocol_whitelist`),
so a redirect or a playlist cannot switch to another protocol.

Camera URLs often carry credentials (``rtsp://user:pass@…``, ``?token=…``):
:func:`mask_source` hides them for every listing, error, log line and audit entry, and
:func:`scrub` removes them from any text (an FFmpeg message that echoes the URL).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from visage.errors import InputError
from visage.masking import MASK, mask_url, scrub

__all__ = ["MASK", "mask_source", "scrub"]

ALLOWED = ("rtsp://", "rtsps://", "http://", "https://", "/dev/videoN", "a device index")
# What FFmpeg needs for each scheme, nothing more: RTSP is read over TCP (interleaved),
# so no rtp/udp; plain HTTP may not be redirected to HTTPS or anything else, and back.
_PROTOCOLS = {
    "rtsp": "rtsp,tcp",
    "rtsps": "rtsps,tls,tcp",
    "http": "http,tcp",
    "https": "https,tls,tcp",
}
_DEVICE = re.compile(r"/dev/video[0-9]{1,3}|[0-9]{1,3}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# Printable ASCII without space or backslash: no newlines, tabs, NULs or look-alikes.
_URL_CHARS = re.compile(r"[!-\[\]-~]+")


class SourceRefusedError(InputError):
    """A camera source that is not on the allow-list (HTTP 422)."""


def is_device(source: str) -> bool:
    return _DEVICE.fullmatch(source) is not None


def scheme_of(source: str) -> str | None:
    """The lower-case scheme of a ``scheme://`` source, else None."""
    match = _SCHEME.match(source)
    return match.group(1).lower() if match else None


def protocol_whitelist(source: str) -> str | None:
    """FFmpeg's ``protocol_whitelist`` for a network source; None if its scheme is not
    one Visage opens."""
    scheme = scheme_of(source)
    return _PROTOCOLS.get(scheme) if scheme else None


def check_camera_source(source: str) -> str:
    """The source if a remote caller may name it (scheme lower-cased), else
    :class:`SourceRefusedError`. The message never repeats the source."""
    if is_device(source):
        return source
    refused = SourceRefusedError(
        "camera source refused: only rtsp://, rtsps://, http:// or https:// URLs with a "
        "host, or a local video device (/dev/videoN or an index), are allowed"
    )
    if not _URL_CHARS.fullmatch(source):
        raise refused
    scheme = scheme_of(source)
    if scheme not in _PROTOCOLS:
        raise refused
    normal = scheme + source[len(scheme) :]
    try:
        parts = urlsplit(normal)
        host, _port = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        raise refused from None
    if not host:
        raise refused
    return normal


mask_source = mask_url
"""The source with its credentials masked (see :func:`visage.masking.mask_url`); a path
or device is returned as it is."""
