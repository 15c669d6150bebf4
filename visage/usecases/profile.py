"""Read and change the deployment profile (kept in the store's meta table)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from visage.core import Visage
from visage.errors import VisageError
from visage.governance.audit import Actor
from visage.governance.audit_ops import ProfileSetAudit
from visage.governance.profile import DeploymentProfile, Jurisdiction
from visage.store.meta import get_meta, put_meta

PROFILE_KEY = "deployment_profile"


class ProfileChanges(BaseModel):
    """The input of :func:`set_profile` in every door: a field left out (None) stays as it
    is; an empty string clears a reference; a list replaces the whole list."""

    model_config = ConfigDict(extra="forbid")

    jurisdiction: Jurisdiction | None = Field(default=None, description="Law that applies.")
    public_space: bool | None = Field(
        default=None, description="Cameras see a publicly accessible space."
    )
    law_enforcement: bool | None = Field(
        default=None, description="The operator is a law-enforcement authority."
    )
    dpia_ref: str | None = Field(
        default=None,
        max_length=200,
        description="DPIA reference (GDPR Art. 35); 1:N stays off without one.",
    )
    cndp_ref: str | None = Field(
        default=None,
        max_length=200,
        description="CNDP authorisation reference, required for 1:N in Morocco.",
    )
    watchlist_purposes: list[str] | None = Field(
        default=None,
        description="Purposes whose 1:N matches need two reviewers' confirmation.",
    )
    controller: str | None = Field(
        default=None, max_length=200, description="Data controller (name and address)."
    )
    dpo_contact: str | None = Field(
        default=None, max_length=200, description="Data protection officer's contact."
    )


def get_profile(core: Visage) -> DeploymentProfile:
    with core.store.session() as session:
        value = get_meta(session, PROFILE_KEY)
    return DeploymentProfile() if value is None else DeploymentProfile.model_validate_json(value)


def set_profile(
    core: Visage, changes: ProfileChanges, actor: Actor | None = None
) -> DeploymentProfile:
    """Apply ``changes`` to the stored profile and audit which fields changed."""
    given = changes.model_dump(exclude_none=True)
    current = get_profile(core).model_dump()
    current.update({k: (None if v == "" else v) for k, v in given.items()})
    try:
        profile = DeploymentProfile.model_validate(current)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise VisageError(
            f"invalid profile: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from exc
    with core.store.session() as session:
        put_meta(session, PROFILE_KEY, profile.model_dump_json().encode())
        core.audit(
            session,
            actor or Actor.local(),
            ProfileSetAudit(changed=sorted(given), profile=profile.model_dump(mode="json")),
        )
    return profile
