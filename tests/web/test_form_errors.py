"""Form errors in the viewer's language (visage/web/form_errors.py): pydantic's error types
worded by the console, translated; a type it does not know keeps pydantic's message."""

from __future__ import annotations

import typing
from datetime import date

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core.core_schema import ErrorType

from visage.web.form_errors import BY_TYPE, describe
from visage.web.i18n import SUPPORTED, translator


class _Form(BaseModel):
    name: str = Field(min_length=2, max_length=5)
    count: int = Field(default=1, ge=1, le=10)
    since: date | None = None
    purposes: list[str] = Field(default_factory=list, max_length=2)

    @field_validator("purposes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if "forbidden" in value:
            raise ValueError("that purpose is not allowed here")
        return value


def _errors(**fields: object) -> list[dict[str, typing.Any]]:
    with pytest.raises(ValidationError) as caught:
        _Form.model_validate(fields)
    return [dict(e) for e in caught.value.errors()]


LABELS = {"name": "Name", "count": "Count", "since": "From", "purposes": "Purposes"}


@pytest.mark.parametrize(
    ("fields", "english", "french"),
    [
        ({"name": "abcdefgh"}, "Name: at most 5 characters", "Nom: au plus 5 caractères"),
        ({"name": "a"}, "Name: at least 2 characters", "Nom: au moins 2 caractères"),
        ({}, "Name: required", "Nom: obligatoire"),
        ({"name": "ab", "count": 11}, "Count: must be at most 10", "doit valoir au plus 10"),
        ({"name": "ab", "count": "x"}, "Count: a whole number is expected", "nombre entier"),
        ({"name": "ab", "since": "soon"}, "From: a date is expected (YYYY-MM-DD)", "Du: une"),
        ({"name": "ab", "purposes": ["a", "b", "c"]}, "Purposes: at most 2 items", "au plus 2"),
    ],
)
def test_common_problems_are_worded_in_the_viewers_language(
    fields: dict[str, object], english: str, french: str
) -> None:
    errors = _errors(**fields)
    assert describe(errors, translator("en"), LABELS) == english
    shown = describe(errors, translator("fr"), LABELS)
    assert french in shown and shown != english


def test_a_domain_message_is_shown_without_pydantics_prefix() -> None:
    errors = _errors(name="ab", purposes=["forbidden"])
    assert describe(errors, translator("en"), LABELS) == (
        "Purposes: that purpose is not allowed here"
    )


def test_every_wording_is_a_pydantic_error_type_and_translated() -> None:
    """A misspelt type would never match; a wording missing from a catalogue would show in
    English to a French viewer."""
    assert set(BY_TYPE) <= set(typing.get_args(ErrorType))
    for lang in SUPPORTED:
        if lang in ("en", "ar"):  # English is the source; Arabic covers the frame only
            continue
        messages = translator(lang).messages
        assert [w for w in set(BY_TYPE.values()) if w not in messages] == []


def test_no_errors_and_unlabelled_fields() -> None:
    assert describe([], translator("fr")) == "Le formulaire n\u2019est pas valide."
    errors = _errors(name="abcdefgh")
    assert describe(errors, translator("en")) == "name: at most 5 characters"
    body = [dict(errors[0], loc=("body", "name"))]
    assert describe(body, translator("en"), skip=1) == "name: at most 5 characters"
