"""Reading console forms: text fields and uploaded files, with the same limits as the API."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile

from visage.api.uploads import MAX_PARTS
from visage.core import Visage
from visage.errors import InputError, UploadTooLargeError

CHUNK = 1 << 16


def text(
    form: FormData, name: str, default: str = "", *, max_length: int = 2000, strip: bool = True
) -> str:
    """A text field, stripped (unless ``strip`` is false: a password); ``default`` when
    absent. Over ``max_length``: InputError."""
    value = form.get(name, default)
    if not isinstance(value, str):
        raise InputError(f"field {name} must be text")
    if strip:
        value = value.strip()
    if len(value) > max_length:
        raise InputError(f"field {name} has more than {max_length} characters")
    return value


def texts(form: FormData, name: str) -> list[str]:
    """Every non-empty value of a repeated text field (checkboxes, multi-selects)."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


async def files(
    core: Visage, form: FormData, name: str, *, max_files: int = MAX_PARTS
) -> list[Upload]:
    """The files of field ``name`` (empty parts skipped), each read up to the installation's
    ``max_bytes``; a larger one is refused with :class:`UploadTooLargeError`. The form was
    read in memory under the same limit (:func:`visage.web.session.csrf_form`), so an
    over-limit file was already refused there, before the rest of the body arrived; this
    check stays for forms built otherwise."""
    limit = core.settings.max_bytes
    uploads = [f for f in form.getlist(name) if isinstance(f, UploadFile)]
    if len(uploads) > max_files:
        raise InputError(f"at most {max_files} files at once")
    out: list[Upload] = []
    for upload in uploads:
        chunks: list[bytes] = []
        size = 0
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadTooLargeError(
                    f"{upload.filename or 'a file'} is larger than {limit} bytes"
                )
            chunks.append(chunk)
        if size:
            out.append(Upload(upload.filename or f"upload #{len(out) + 1}", b"".join(chunks)))
    return out
