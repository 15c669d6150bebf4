"""Hiding credentials in URLs: what every listing, log line, error, audit entry and
``config show`` uses before a URL that someone configured is shown back.

A URL's userinfo password (or a lone user name, often a token), the values of query
parameters whose name looks secret (pass, pwd, token, auth, key, secret, sig, cred,
session — masking a harmless one too is the safe mistake) and the fragment are replaced by
``***``. :func:`scrub` also removes a URL's secrets from free text, such as an FFmpeg
message that echoes it. Standard library only: every layer may use it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SECRET_WORDS = ("pass", "pwd", "token", "auth", "key", "secret", "sig", "cred", "session")


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


def mask_url(source: str) -> str:
    """The source with its userinfo password (or a lone user name, often a token) and
    secret query parameters replaced by ``***``; the fragment is dropped. A path or device
    is returned as it is."""
    start = _url_start(source)
    if start is None:
        return source
    if start:
        return source[:start] + mask_url(source[start:])
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
    text = text.replace(source, mask_url(source))
    for secret in secrets_in(source):
        text = text.replace(secret, MASK)
    return text
