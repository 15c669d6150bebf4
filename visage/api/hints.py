"""What an API client sends to fix a refusal: the ``hint`` of a problem, per error type.

The core's messages name no door's syntax; this table is the API's own (the CLI has
:mod:`visage.cli.hints`).
"""

from __future__ import annotations

from visage.errors import VisageError, hint_from
from visage.governance.access import (
    KeyOwnerRequiredError,
    KeyPurposeRequiredError,
    ReviewerWithoutOwnerError,
)
from visage.governance.profile import (
    AuthorisationRefMissingError,
    CndpMissingError,
    DpiaMissingError,
)

HINTS: dict[type[VisageError], str] = {
    DpiaMissingError: 'an admin key records it: PATCH /v1/profile {"dpia_ref": "REF"}',
    CndpMissingError: 'an admin key records it: PATCH /v1/profile {"cndp_ref": "REF"}',
    AuthorisationRefMissingError: "send authorisation_ref=REF as a query parameter or a "
    "multipart form field",
    KeyPurposeRequiredError: 'list at least one purpose in "purposes"',
    KeyOwnerRequiredError: 'name the person in "owner"',
    ReviewerWithoutOwnerError: 'an admin key creates one: POST /v1/keys {"role": "reviewer", '
    '"owner": "NAME"}',
}


def hint_for(error: VisageError) -> str | None:
    return hint_from(HINTS, error)
