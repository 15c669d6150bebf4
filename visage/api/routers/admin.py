"""API keys and the deployment profile — for admin keys."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from visage.api.deps import Admin, Core
from visage.api.problems import PROBLEM_RESPONSES
from visage.governance.access import KeyCreated, KeyInfo, Role
from visage.governance.profile import DeploymentProfile, Jurisdiction
from visage.usecases import keys as keys_uc
from visage.usecases import profile as profile_uc

router = APIRouter(prefix="/v1", tags=["admin"], responses=PROBLEM_RESPONSES)


class KeyIn(BaseModel):
    role: Role
    purposes: list[str] = Field(default_factory=list, examples=[["access-control"]])
    name: str = Field(default="", max_length=200)
    owner: str = Field(
        default="",
        max_length=200,
        description="The person the key belongs to; required for reviewer keys (two "
        "confirmations must come from two different owners).",
        examples=["Ada Lovelace"],
    )


class ProfileIn(BaseModel):
    jurisdiction: Jurisdiction | None = None
    public_space: bool | None = None
    law_enforcement: bool | None = None
    dpia_ref: str | None = Field(default=None, max_length=200)
    cndp_ref: str | None = Field(default=None, max_length=200)
    watchlist_purposes: list[str] | None = None
    controller: str | None = Field(default=None, max_length=200)
    dpo_contact: str | None = Field(default=None, max_length=200)


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    summary="Create an API key (the key is in this response only)",
)
def create_key(body: KeyIn, core: Core, who: Admin) -> KeyCreated:
    return keys_uc.create_key(
        core, body.role, body.purposes, body.name, actor=who.actor, owner=body.owner
    )


@router.get("/keys", response_model=list[KeyInfo], summary="All keys (never the secrets)")
def list_keys(core: Core, _: Admin) -> list[KeyInfo]:
    return keys_uc.list_keys(core)


@router.delete("/keys/{key_id}", response_model=KeyInfo, summary="Revoke a key")
def revoke_key(key_id: str, core: Core, who: Admin) -> KeyInfo:
    return keys_uc.revoke_key(core, key_id, actor=who.actor)


@router.get("/profile", response_model=DeploymentProfile, summary="The deployment profile")
def get_profile(core: Core, _: Admin) -> DeploymentProfile:
    return profile_uc.get_profile(core)


@router.patch(
    "/profile",
    response_model=DeploymentProfile,
    summary="Change the deployment profile (fields not sent stay)",
)
def set_profile(body: ProfileIn, core: Core, who: Admin) -> DeploymentProfile:
    return profile_uc.set_profile(core, actor=who.actor, **body.model_dump())
