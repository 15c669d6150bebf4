"""Short ids at the command line: a unique prefix (at least 4 characters) for a full id, as
git takes short hashes; tables show the first 8 characters. The resolving is the use-case
:mod:`visage.usecases.ids`, imported only when a command needs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from visage.core import Visage

SHORT = 8
"""As :data:`visage.usecases.ids.SHORT` (a test keeps the two equal)."""


def short(full_id: str | None) -> str:
    """The id as a table shows it; ``--json`` keeps full ids."""
    return (full_id or "")[:SHORT]


def full_id(core: Visage, kind: str, given: str) -> str:
    """The full id of the ``kind`` (subject, template, key, review, camera) that ``given``
    starts; bad input (exit 2) when it is too short or ambiguous."""
    from visage.usecases import ids as ids_uc

    return ids_uc.resolve(core, ids_uc.IdKind(kind), given)
