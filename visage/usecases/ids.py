"""Short ids: a unique prefix stands for a full id, as git accepts a short hash.

Ids are 32 hex characters; a person types or reads the first few. The CLI resolves what it
is given here before it calls the use-case (the API keeps full ids). A prefix matching no
row is passed on unchanged, so the use-case answers with its own "not found".
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.errors import InputError
from visage.store.schema import ApiKeyRow, Base, CameraRow, ReviewRow, SubjectRow, TemplateRow

MIN_PREFIX = 4
"""Shorter prefixes are refused: they would match by chance, and a typo would too."""

SHORT = 8
"""How many characters tables show: enough to be unique in any real gallery."""

FULL = 32


class IdKind(StrEnum):
    subject = "subject"
    template = "template"
    key = "key"
    review = "review"
    camera = "camera"


_ROWS: dict[IdKind, type[Base]] = {
    IdKind.subject: SubjectRow,
    IdKind.template: TemplateRow,
    IdKind.key: ApiKeyRow,
    IdKind.review: ReviewRow,
    IdKind.camera: CameraRow,
}


class AmbiguousIdError(InputError):
    """A prefix that matches more than one id."""


def short(full_id: str) -> str:
    """The id as tables show it (:data:`SHORT` characters)."""
    return full_id[:SHORT]


def resolve_prefix(session: Session, row: type[Base], prefix: str, what: str = "id") -> str:
    """The one id of ``row``'s table that starts with ``prefix``; ``prefix`` itself when it
    is a full id or matches none; an :class:`InputError` when it is shorter than
    :data:`MIN_PREFIX` or matches several."""
    given = prefix.strip().lower()
    if len(given) >= FULL:
        return given
    if len(given) < MIN_PREFIX:
        raise InputError(
            f"{what} id {prefix!r} is too short: give at least {MIN_PREFIX} characters"
        )
    column = row.__table__.c.id
    matches = list(
        session.scalars(select(column).where(column.startswith(given, autoescape=True)).limit(50))
    )
    if len(matches) > 1:
        count = f"{len(matches)}" if len(matches) < 50 else "50 or more"
        raise AmbiguousIdError(
            f"{what} id prefix {given!r} is ambiguous: it matches {count} {what}s; "
            "give more characters"
        )
    return str(matches[0]) if matches else given


def resolve(core: Visage, kind: IdKind, prefix: str) -> str:
    """The full id of the ``kind`` that ``prefix`` stands for (see :func:`resolve_prefix`)."""
    with core.store.session() as session:
        return resolve_prefix(session, _ROWS[kind], prefix, kind.value)
