"""Image uploads: read in memory under a byte budget as the body arrives, never spooled.

A multipart body is parsed here, streaming, with python-multipart's low-level parser and
callbacks into memory buffers, instead of ``request.form()``: Starlette spools file parts
over 1 MB to a temporary file, which would put a bystander's photo on disk in plaintext.
The budget is counted on the bytes received, chunk by chunk, for ``Content-Length`` and
chunked bodies alike, so an over-limit upload is refused after at most its limit (plus
:data:`FRAMING` for multipart headers and boundaries, plus one network chunk) was read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.requests import Request

from visage.errors import InputError, UploadTooLargeError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FRAMING = 64 * 1024
"""Bytes allowed on top of the images in a multipart body: part headers, boundaries, small
fields."""

TEXT_LIMIT = 1024
"""Bytes allowed in one multipart text field (a reference, not a document)."""

MAX_PARTS = 8
"""More parts than this in one body is refused (a flood of tiny parts costs parser time)."""


FORM_TEXT_BUDGET = 64 * 1024
"""Bytes allowed for all the text fields of a whole form together, and for a whole
url-encoded body (see :class:`FormBudget`)."""


def _limit(request: Request) -> int:
    limit: int = request.app.state.core.settings.max_bytes
    return limit


@dataclass(frozen=True, slots=True)
class Upload:
    """What a request carried: the images asked for, in order, and small text fields."""

    images: list[bytes]
    texts: dict[str, str]


async def read_form(request: Request, *fields: str, texts: tuple[str, ...] = ()) -> Upload:
    """The images of ``fields``, in that order: multipart file fields or, for a route that
    takes one image, the raw request body; with ``texts``, also those multipart text fields
    (at most :data:`TEXT_LIMIT` bytes each) when present. Content is sniffed later, never
    trusted from the filename or content type."""
    limit = _limit(request)
    ctype = request.headers.get("content-type", "")
    multipart = ctype.lower().startswith("multipart/form-data")
    if not multipart and len(fields) > 1:
        names = " and ".join(fields)
        raise InputError(
            f"this request needs {len(fields)} images as multipart fields {names}; "
            "a raw body carries only one"
        )
    budget = limit * len(fields) + (FRAMING if multipart else 0)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > budget:
        raise UploadTooLargeError(
            f"upload of {declared} bytes is more than the limit of {budget} bytes"
        )
    if multipart:
        collector = _PartCollector(frozenset(fields), frozenset(texts), limit)
        await _read_multipart(request, ctype, collector, budget)
        parts = collector.parts
    else:
        parts = {fields[0]: await _read_raw(request, limit)}
    images = []
    for field in fields:
        data = parts.get(field)
        if data is None:
            raise InputError(f"multipart field '{field}' with an image file is required")
        if not data:
            where = f" in field '{field}'" if multipart else ""
            raise InputError(f"empty upload (0 bytes){where}")
        images.append(bytes(data))
    return Upload(images, _texts(parts, texts))


async def read_images(request: Request, *fields: str) -> list[bytes]:
    """The images of ``fields``; see :func:`read_form`."""
    return (await read_form(request, *fields)).images


async def read_many(request: Request, field: str) -> list[bytes]:
    """Every image in the multipart field ``field``, which may be repeated (up to
    :data:`MAX_PARTS` parts), in order; or the raw request body as the one image."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        return (await read_form(request, field)).images
    limit = _limit(request)
    budget = limit * MAX_PARTS + FRAMING
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > budget:
        raise UploadTooLargeError(
            f"upload of {declared} bytes is more than the limit of {budget} bytes"
        )
    collector = _PartCollector(frozenset([field]), frozenset(), limit, repeated=True)
    await _read_multipart(request, ctype, collector, budget)
    images = [bytes(part) for part in collector.repeats]
    if not images:
        raise InputError(f"multipart field '{field}' with an image file is required")
    if any(not image for image in images):
        raise InputError(f"empty upload (0 bytes) in field '{field}'")
    return images


async def read_upload(request: Request, field: str) -> bytes:
    """One image: the multipart field ``field`` or the raw body."""
    return (await read_form(request, field)).images[0]


@dataclass(frozen=True, slots=True)
class FormBudget:
    """What a whole form (:func:`read_form_data`) may carry: up to ``max_files`` file parts
    of at most ``file_bytes`` each, and up to ``max_fields`` text fields of at most
    ``text_bytes`` in all. With ``max_files=0`` a file part is refused outright."""

    file_bytes: int
    max_files: int
    max_fields: int
    text_bytes: int = FORM_TEXT_BUDGET

    def body(self, multipart: bool) -> int:
        """The most bytes a body may have: the text budget alone for a url-encoded body or
        a form without files; with files, every file at its limit plus :data:`FRAMING`."""
        if not multipart or not self.max_files:
            return self.text_bytes
        return self.file_bytes * self.max_files + self.text_bytes + FRAMING


async def read_form_data(request: Request, budget: FormBudget) -> FormData:
    """Every text field and file part of a form body, in memory, under ``budget``: a
    drop-in for ``request.form()`` that never spools a file to disk and refuses an
    over-budget body (:class:`UploadTooLargeError`) as soon as the bytes received pass it.
    Multipart and url-encoded bodies are read; any other body is left unread (an empty
    form, as Starlette gives). Files come as :class:`UploadFile` over :class:`io.BytesIO`."""
    ctype = request.headers.get("content-type", "")
    kind = ctype.partition(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return FormData()
    multipart = kind == "multipart/form-data"
    limit = budget.body(multipart)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLargeError(f"form of {declared} bytes is more than the limit of {limit}")
    if multipart:
        collector = _FormCollector(budget)
        await _read_multipart(request, ctype, collector, limit)
        return FormData(collector.items)
    body = await _read_raw(request, limit)
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=budget.max_fields,
        )
    except UnicodeDecodeError as exc:
        raise InputError("the form is not UTF-8 text") from exc
    except ValueError as exc:  # more fields than max_num_fields
        raise InputError(f"more than {budget.max_fields} fields in one form") from exc
    items: list[tuple[str, str | UploadFile]] = list(pairs)
    return FormData(items)


def _texts(parts: dict[str, bytearray], names: tuple[str, ...]) -> dict[str, str]:
    texts = {}
    for name in names:
        if name in parts:
            try:
                texts[name] = parts[name].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"multipart field '{name}' is not UTF-8 text") from exc
    return texts


async def _read_raw(request: Request, limit: int) -> bytearray:
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise UploadTooLargeError(f"upload is more than the limit of {limit} bytes")
        body += chunk
    return body


async def _read_multipart(
    request: Request, ctype: str, collector: _PartCollector, budget: int
) -> None:
    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InputError("multipart body without a boundary in its content type")
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > budget:
                raise UploadTooLargeError(f"upload is more than the limit of {budget} bytes")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InputError(f"malformed multipart body ({exc})") from exc
    if not collector.finished:
        raise InputError("malformed multipart body (it ends before its closing boundary)")


class _PartCollector:
    """Callbacks for :class:`MultipartParser`: keeps the wanted fields' bytes in memory and
    drops every other part's data as it streams past."""

    def __init__(
        self, files: frozenset[str], texts: frozenset[str], limit: int, repeated: bool = False
    ) -> None:
        self.limits = {name: limit for name in files} | {name: TEXT_LIMIT for name in texts}
        self.parts: dict[str, bytearray] = {}
        self.repeated = repeated
        self.repeats: list[bytearray] = []
        """With ``repeated``, every part of the file fields, in order (each within limit)."""
        self.finished = False
        self._count = 0
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""
        self._current: bytearray | None = None
        self._name = ""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_end": self._finish,
        }

    def _begin(self) -> None:
        self._count += 1
        if self._count > MAX_PARTS:
            raise InputError(f"more than {MAX_PARTS} parts in a multipart body")
        self._disposition = b""
        self._current = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._field).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name in self.limits and self.repeated:
            self._name = name
            self._current = bytearray()
            self.repeats.append(self._current)
        elif name in self.limits:
            if name in self.parts:
                raise InputError(f"multipart field '{name}' is given more than once")
            self._name = name
            self._current = self.parts[name] = bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._current is None:
            return
        limit = self.limits[self._name]
        if len(self._current) + (end - start) > limit:
            raise UploadTooLargeError(
                f"multipart field '{self._name}' is more than the limit of {limit} bytes"
            )
        self._current += data[start:end]

    def _end(self) -> None:
        self._current = None

    def _finish(self) -> None:
        self.finished = True


class _FormCollector(_PartCollector):
    """Callbacks for :class:`MultipartParser` that keep every part of a form, in memory:
    text fields (UTF-8) and files (any part whose disposition has a ``filename``, as
    Starlette decides), each counted against a :class:`FormBudget` as its bytes arrive."""

    def __init__(self, budget: FormBudget) -> None:
        super().__init__(frozenset(), frozenset(), budget.file_bytes)
        self.budget = budget
        self.items: list[tuple[str, str | UploadFile]] = []
        self._files = 0
        self._fields = 0
        self._text_bytes = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._filename: str | None = None
        self._buffer = io.BytesIO()

    def _begin(self) -> None:
        self._disposition = b""
        self._headers = []
        self._buffer = io.BytesIO()

    def _header_end(self) -> None:
        field, value = bytes(self._field).strip().lower(), bytes(self._value)
        self._headers.append((field, value))
        if field == b"content-disposition":
            self._disposition = value
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        if self._filename is not None:
            self._files += 1
            if not self.budget.max_files:
                raise InputError("this form takes no files")
            if self._files > self.budget.max_files:
                raise InputError(f"more than {self.budget.max_files} files in one form")
        else:
            self._fields += 1
            if self._fields > self.budget.max_fields:
                raise InputError(f"more than {self.budget.max_fields} fields in one form")

    def _data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._filename is not None:
            if self._buffer.tell() + size > self.budget.file_bytes:
                name = self._filename or "a file"
                raise UploadTooLargeError(
                    f"{name} is larger than the limit of {self.budget.file_bytes} bytes"
                )
        else:
            self._text_bytes += size
            if self._text_bytes > self.budget.text_bytes:
                raise UploadTooLargeError(
                    f"the form's text is more than the limit of {self.budget.text_bytes} bytes"
                )
        self._buffer.write(data[start:end])

    def _end(self) -> None:
        if self._filename is None:
            try:
                value = self._buffer.getvalue().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"form field '{self._name}' is not UTF-8 text") from exc
            self.items.append((self._name, value))
            return
        size = self._buffer.tell()
        self._buffer.seek(0)
        upload = UploadFile(
            self._buffer, size=size, filename=self._filename, headers=Headers(raw=self._headers)
        )
        self.items.append((self._name, upload))
