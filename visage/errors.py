"""The exceptions that cross the core's boundary.

Every error a user can cause is a :class:`VisageError` with a one-line message;
the CLI prints that line and exits 2, the API turns it into a 4xx problem.
"""

from __future__ import annotations

from collections.abc import Mapping


class VisageError(Exception):
    """Base class: something the caller can fix. ``str(err)`` is one readable line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InputError(VisageError):
    """The input itself is unusable: unreadable, wrong type, too large, empty."""


class ImageTooLargeError(InputError):
    """The image has more pixels than the configured limit; it was not decoded."""


class UploadTooLargeError(InputError):
    """More bytes than the configured limit; not read further."""


class FaceNotFoundError(InputError):
    """No face in an image where one was required."""


class TooManyFacesError(InputError):
    """Several faces where exactly one was required (enrolment)."""


class LowQualityError(InputError):
    """A face too small, blurred or turned away to make a reliable template."""


class NotFoundError(VisageError):
    """A subject or other record does not exist."""


class ConsentError(VisageError):
    """An operation lacks a valid consent record for the subject or purpose."""


class ModelMissingError(VisageError):
    """A model file is not installed; the message names the package that ships it."""

    exit_code = 3


class MasterKeyError(VisageError):
    """The master key is missing, unreadable or does not open the store."""

    exit_code = 3


class MasterKeyMissingError(MasterKeyError):
    """No master key file and no key in the environment: the data dir is not initialised."""


class NotInitialisedError(VisageError):
    """The data directory holds no Visage database yet."""


def hint_from(table: Mapping[type[VisageError], str], error: VisageError) -> str | None:
    """A door's hint for ``error``: the entry of the most specific type in ``table`` that
    ``error`` is an instance of (each door keeps its own table, in its own syntax)."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return None
