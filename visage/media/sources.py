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
from urllib.parse import unquote, urlsplit, urlunsplit

from visage.errors import InputError

MASK = "***"
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
# A query parameter is secret when its name (lower case, letters and digits only)
# contains one of these; masking a harmless one too is the safe mistake.
_SECRET_WORDS = ("pass", "pwd", "token", "auth", "key", "secret", "sig", "cred", "session")


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


def _secret_name(name: str) -> bool:
    plain = re.sub(r"[^a-z0-9]", "", unquote(name).lower())
    return any(word in plain for word in _SECRET_WORDS)


def _mask_query(query: str) -> str:
    out = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        out.append(f"{name}={MASK}" if eq and value and _secret_name(name) else item)
    return "&".join(out)


def _url_start(source: str) -> int | None:
    """Where the first ``scheme://`` URL in ``source`` starts (nested ones included)."""
    match = _SCHEME.search(source)
    return match.start() if match else None


def mask_source(source: str) -> str:
    """The source with its userinfo password (or a lone user name, often a token) and
    secret query parameters replaced by ``***``; the fragment is dropped. A path or device
    is returned as it is."""
    start = _url_start(source)
    if start is None:
        return source
    if start:
        return source[:start] + mask_source(source[start:])
    try:
        parts = urlsplit(source)
    except ValueError:
        return source.split("://", 1)[0] + "://" + MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query=_mask_query(parts.query), fragment=""))


def secrets_in(source: str) -> list[str]:
    """The secret strings of a source (raw and percent-decoded), longest first."""
    start = _url_start(source)
    if start is None:
        return []
    source = source[start:]
    try:
        parts = urlsplit(source)
    except ValueError:
        return [source]
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    for item in parts.query.split("&"):
        name, eq, value = item.partition("=")
        if eq and value and _secret_name(name):
            found.append(value)
    if parts.fragment:
        found.append(parts.fragment)
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, source: str) -> str:
    """``text`` with the source shown masked and every secret of it replaced."""
    text = text.replace(source, mask_source(source))
    for secret in secrets_in(source):
        text = text.replace(secret, MASK)
    return text
