"""The first problem of a rejected form, as a sentence in the viewer's language.

pydantic's own messages are English ("String should have at most 200 characters"). Each
error also carries a ``type`` and its context (``max_length``: 200), so the console words the
common types itself, through the catalogues, and falls back to pydantic's text only for a
type it does not know. A validator of Visage's own raises a domain message (English, like
the use-cases' errors); it is shown as it is, without pydantic's "Value error, " prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from visage.web.i18n import Translator


def N_(message: str) -> str:
    """Marks ``message`` for the catalogues (Babel's keyword) without translating it."""
    return message


BY_TYPE: Mapping[str, str] = {
    "missing": N_("required"),
    "string_too_short": N_("at least %(min_length)s characters"),
    "string_too_long": N_("at most %(max_length)s characters"),
    "too_short": N_("at least %(min_length)s items"),
    "too_long": N_("at most %(max_length)s items"),
    "string_pattern_mismatch": N_("not in the expected form"),
    "string_type": N_("text expected"),
    "int_parsing": N_("a whole number is expected"),
    "int_from_float": N_("a whole number is expected"),
    "float_parsing": N_("a number is expected"),
    "bool_parsing": N_("yes or no is expected"),
    "greater_than": N_("must be more than %(gt)s"),
    "greater_than_equal": N_("must be at least %(ge)s"),
    "less_than": N_("must be less than %(lt)s"),
    "less_than_equal": N_("must be at most %(le)s"),
    "date_parsing": N_("a date is expected (YYYY-MM-DD)"),
    "date_from_datetime_parsing": N_("a date is expected (YYYY-MM-DD)"),
    "datetime_parsing": N_("a date and time are expected"),
    "datetime_from_date_parsing": N_("a date and time are expected"),
    "enum": N_("must be one of: %(expected)s"),
    "literal_error": N_("must be one of: %(expected)s"),
    "url_parsing": N_("not a valid address"),
    "url_scheme": N_("this kind of address is not allowed"),
    "extra_forbidden": N_("not a field of this form"),
}
"""pydantic error types (``pydantic_core`` names) and how the console words them."""

_VALUE_ERROR = "Value error, "


def describe(
    errors: Sequence[Mapping[str, Any]],
    gettext: Translator,
    labels: Mapping[str, str] | None = None,
    *,
    skip: int = 0,
) -> str:
    """``field: problem`` for the first of ``errors`` (``ValidationError.errors()``), both in
    ``gettext``'s language. ``labels`` names fields as the form shows them (English sources,
    translated here); ``skip`` drops leading parts of the location (FastAPI's ``body``)."""
    if not errors:
        return gettext("The form is not valid.")
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())][skip:]
    field = loc[-1] if loc else ""
    label = gettext(labels[field]) if labels and field in labels else ".".join(loc)
    problem = str(first.get("msg", "")).removeprefix(_VALUE_ERROR)
    wording = BY_TYPE.get(str(first.get("type", "")))
    context = {k: str(v) for k, v in (first.get("ctx") or {}).items()}
    if wording is not None and ("%(" not in wording or context):
        with contextlib.suppress(KeyError, TypeError, ValueError):  # unexpected context
            problem = gettext(wording, **context)
    return f"{label}: {problem}" if label else problem
