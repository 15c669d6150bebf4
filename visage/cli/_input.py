"""Build a use-case's input model from command-line options.

The models live next to their use-cases (``ProfileChanges``, ``NewKey``, ``ConsentIn``) and
the API takes them as request bodies; the CLI fills the same model, so both doors accept
and refuse the same values. A refusal is bad input (exit 2) naming the option, not a field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from visage.errors import InputError

if TYPE_CHECKING:  # pydantic is imported by the command that builds a model, not at start-up
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


def build(model: type[M], options: dict[str, str] | None = None, /, **fields: object) -> M:
    """``model`` from ``fields``; ``options`` maps a field to the option that set it when
    the two are not spelled alike (by default ``dpia_ref`` is ``--dpia-ref``)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        names = [p for p in first["loc"] if isinstance(p, str)]  # not list indices
        field = names[-1] if names else model.__name__
        option = (options or {}).get(field, "--" + field.replace("_", "-"))
        raise InputError(f"{option}: {first['msg']}") from exc
