"""The deployment profile: where and by whom Visage runs, and the gates that follow.

Privacy by default: a new installation may verify (1:1) but not identify (1:N) until a
DPIA reference is recorded — and, in Morocco, a CNDP authorisation (law 09-08). Live 1:N on
camera streams by a law-enforcement operator in a publicly accessible space is refused
outright (EU AI Act Art. 5(1)(h) and the equivalent position of the CNDP). For that same
operator every 1:N search on a still image is *post*-remote identification: it needs the
reference of its authorisation (AI Act Art. 26(10)), and its rate per caller has a low
ceiling, so that sending a camera's frames one by one cannot amount to live identification.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from visage.errors import VisageError
from visage.governance.consent import normalise_purpose


class Jurisdiction(StrEnum):
    EU = "EU"
    FR = "FR"
    MA = "MA"
    other = "other"


class GateError(VisageError):
    """The deployment profile does not allow this operation."""


class IdentifyRateError(GateError):
    """More 1:N searches a minute than the profile allows this caller (HTTP 429)."""


class LiveIdentificationRefusedError(GateError):
    """Live 1:N by a law-enforcement operator in a publicly accessible space."""


class DpiaMissingError(GateError):
    """1:N is off until a DPIA reference is recorded in the profile."""


class CndpMissingError(GateError):
    """1:N in Morocco needs a CNDP authorisation reference in the profile."""


class AuthorisationRefMissingError(GateError):
    """A post-remote 1:N search was made without the reference of its authorisation."""


AUTHORISATION_REF_MAX = 200


class DeploymentProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jurisdiction: Jurisdiction = Field(default=Jurisdiction.EU, description="Law that applies.")
    public_space: bool = Field(
        default=False, description="Cameras see a publicly accessible space."
    )
    law_enforcement: bool = Field(
        default=False, description="The operator is a law-enforcement authority."
    )
    dpia_ref: str | None = Field(
        default=None,
        max_length=200,
        description="Reference of the data protection impact assessment (GDPR Art. 35).",
    )
    cndp_ref: str | None = Field(
        default=None, max_length=200, description="CNDP authorisation reference (Morocco)."
    )
    watchlist_purposes: list[str] = Field(
        default_factory=list,
        description="Purposes whose 1:N matches are candidates until two reviewers confirm "
        "them (EU AI Act Art. 14(5)).",
    )
    controller: str | None = Field(
        default=None, max_length=200, description="Data controller (name and address)."
    )
    dpo_contact: str | None = Field(
        default=None, max_length=200, description="Data protection officer's contact."
    )

    rights_contact: str | None = Field(
        default=None,
        max_length=200,
        description="Where people exercise access, erasure and objection rights (address, "
        "e-mail); the DPO contact when unset.",
    )
    supervisory_authority: str | None = Field(
        default=None,
        max_length=200,
        description="Supervisory authority people may complain to (name and contact); by "
        "default the one of the jurisdiction (CNIL, CNDP).",
    )

    @field_validator("watchlist_purposes")
    @classmethod
    def _purposes(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalise_purpose(p) for p in value))

    def is_watchlist(self, purpose: str) -> bool:
        return normalise_purpose(purpose) in self.watchlist_purposes

    def identification_gate(self, *, live: bool = False) -> GateError | None:
        """The error that refuses 1:N identification, or None when it is allowed. Its type
        tells each door which hint to add (the message names no door's syntax)."""
        if live and self.law_enforcement and self.public_space:
            return LiveIdentificationRefusedError(
                "live 1:N identification by a law-enforcement operator in a publicly "
                "accessible space is refused"
            )
        if not self.dpia_ref:
            return DpiaMissingError(
                "1:N identification is off until a DPIA reference is recorded in the "
                "deployment profile"
            )
        if self.jurisdiction is Jurisdiction.MA and not self.cndp_ref:
            return CndpMissingError(
                "1:N identification in Morocco needs a CNDP authorisation reference in the "
                "deployment profile"
            )
        return None

    def identification_refusal(self, *, live: bool = False) -> str | None:
        """Why 1:N identification is not allowed, or None when it is."""
        gate = self.identification_gate(live=live)
        return None if gate is None else gate.message

    @property
    def post_remote_only(self) -> bool:
        """Law enforcement in a publicly accessible space: live 1:N is refused, and each
        search on an image is post-remote identification under an authorisation."""
        return self.law_enforcement and self.public_space

    def authorisation_gate(self, authorisation_ref: str | None) -> GateError | None:
        """The error that refuses a 1:N search without (or with this) authorisation
        reference, or None."""
        if not self.post_remote_only:
            return None
        if not authorisation_ref or not authorisation_ref.strip():
            return AuthorisationRefMissingError(
                "1:N identification by a law-enforcement operator in a publicly accessible "
                "space needs the reference of its authorisation for each search (AI Act Art. "
                "26(10))"
            )
        if len(authorisation_ref.strip()) > AUTHORISATION_REF_MAX:
            return GateError(
                f"an authorisation reference has at most {AUTHORISATION_REF_MAX} characters"
            )
        return None

    def authorisation_refusal(self, authorisation_ref: str | None) -> str | None:
        """Why a 1:N search without (or with this) authorisation reference is refused."""
        gate = self.authorisation_gate(authorisation_ref)
        return None if gate is None else gate.message
