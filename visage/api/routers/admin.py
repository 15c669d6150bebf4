"""API keys and the deployment profile — for admin keys."""

from __future__ import annotations

from fastapi import APIRouter

from visage.api.deps import Core, KeyAdmin, ProfileAdmin
from visage.api.problems import PROBLEM_RESPONSES
from visage.governance.access import KeyCreated, KeyInfo
from visage.governance.profile import DeploymentProfile
from visage.usecases import keys as keys_uc
from visage.usecases import profile as profile_uc

router = APIRouter(prefix="/v1", tags=["admin"], responses=PROBLEM_RESPONSES)


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    summary="Create an API key (the key is in this response only)",
)
def create_key(body: keys_uc.NewKey, core: Core, who: KeyAdmin) -> KeyCreated:
    return keys_uc.create_key(
        core, body.role, body.purposes, body.name, actor=who.actor, owner=body.owner
    )


@router.get("/keys", response_model=list[KeyInfo], summary="All keys (never the secrets)")
def list_keys(core: Core, _: KeyAdmin) -> list[KeyInfo]:
    return keys_uc.list_keys(core)


@router.delete("/keys/{key_id}", response_model=KeyInfo, summary="Revoke a key")
def revoke_key(key_id: str, core: Core, who: KeyAdmin) -> KeyInfo:
    return keys_uc.revoke_key(core, key_id, actor=who.actor)


@router.get("/profile", response_model=DeploymentProfile, summary="The deployment profile")
def get_profile(core: Core, _: ProfileAdmin) -> DeploymentProfile:
    return profile_uc.get_profile(core)


@router.patch(
    "/profile",
    response_model=DeploymentProfile,
    summary="Change the deployment profile (fields not sent stay; null clears one)",
)
def set_profile(
    body: profile_uc.ProfileChanges, core: Core, who: ProfileAdmin
) -> DeploymentProfile:
    return profile_uc.patch_profile(core, body, who.actor)
