"""What a CLI user types to fix a refusal: one hint line per known error type.

The core's messages say what is wrong in the domain's words ("record a DPIA reference");
only this door knows its own syntax (``visage profile set --dpia-ref``). The API has its
own table (:mod:`visage.api.hints`).
"""

from __future__ import annotations

from visage.errors import MasterKeyMissingError, NotInitialisedError, VisageError, hint_from
from visage.governance.access import (
    KeyOwnerRequiredError,
    KeyPurposeRequiredError,
    ReviewerWithoutOwnerError,
)
from visage.governance.erasure import KeyMaterialMissingError
from visage.governance.profile import (
    AuthorisationRefMissingError,
    CndpMissingError,
    DpiaMissingError,
)
from visage.usecases.matching import WatchlistUnmaskRefusedError

HINTS: dict[type[VisageError], str] = {
    DpiaMissingError: "visage profile set --dpia-ref REF",
    CndpMissingError: "visage profile set --cndp-ref REF",
    AuthorisationRefMissingError: "give it with --authorisation-ref REF",
    KeyPurposeRequiredError: "add --purpose PURPOSE (repeat for several)",
    KeyOwnerRequiredError: "add --owner NAME",
    ReviewerWithoutOwnerError: "an admin creates one: visage keys create --role reviewer "
    "--owner NAME",
    NotInitialisedError: "run `visage init` first",
    MasterKeyMissingError: "run `visage init` first, or set VISAGE_MASTER_KEY",
    KeyMaterialMissingError: "if their keys are truly gone: visage erase ID",
    WatchlistUnmaskRefusedError: "drop --keep-enrolled to mask everyone",
}


def hint_for(error: VisageError) -> str | None:
    return hint_from(HINTS, error)
