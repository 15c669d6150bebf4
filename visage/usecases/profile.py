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
    rights_contact: str | None = Field(
        default=None, max_length=200, description="Where people exercise their rights."
    )
    supervisory_authority: str | None = Field(
        default=None, max_length=200, description="Supervisory authority (name and contact)."
    )


def get_profile(core: Visage) -> DeploymentProfile:
    with core.store.session() as session:
        value = get_meta(session, PROFILE_KEY)
    return DeploymentProfile() if value is None else DeploymentProfile.model_validate_json(value)


def patch_profile(
    core: Visage, changes: ProfileChanges, actor: Actor | None = None
) -> DeploymentProfile:
    """``PATCH /v1/profile`` (a JSON merge patch, RFC 7396): a field sent as ``null`` is
    cleared, as ``""`` clears a reference; a field not sent stays as it is."""
    cleared = {f for f in changes.model_fields_set if getattr(changes, f) is None}
    return set_profile(core, changes, actor, clear=frozenset(cleared))


def set_profile(
    core: Visage,
    changes: ProfileChanges,
    actor: Actor | None = None,
    *,
    clear: frozenset[str] = frozenset(),
) -> DeploymentProfile:
    """Apply ``changes`` to the stored profile and audit which fields changed. The fields
    in ``clear`` go back to their default (no reference, no watchlist, false, EU)."""
    given = changes.model_dump(exclude_none=True)
    current = get_profile(core).model_dump()
    current.update({k: (None if v == "" else v) for k, v in given.items()})
    for name in clear:
        current[name] = DeploymentProfile.model_fields[name].get_default(call_default_factory=True)
    given |= dict.fromkeys(clear)
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
