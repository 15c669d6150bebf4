"""The Stop switch (AI Act Art. 14(4)(e)) — for admin keys: halt 1:N processing for all,
one camera or one purpose, list the halts, resume. A halted search answers 423."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from visage.api.deps import Core, HaltAdmin
from visage.api.problems import PROBLEM_RESPONSES
from visage.usecases import halt as halt_uc

router = APIRouter(prefix="/v1", tags=["admin"], responses=PROBLEM_RESPONSES)

SCOPE_HELP = "all, camera:<name> or purpose:<purpose>"


class HaltIn(BaseModel):
    scope: str = Field(min_length=1, max_length=80, description=SCOPE_HELP, examples=["all"])
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why it is stopped; shown to every caller refused while it lasts.",
        examples=["suspected misidentification at the north gate"],
    )


@router.get("/halts", response_model=list[halt_uc.HaltOut], summary="The halts in place")
def list_halts(core: Core, _: HaltAdmin) -> list[halt_uc.HaltOut]:
    return halt_uc.list_halts(core)


@router.post(
    "/halts",
    response_model=halt_uc.HaltOut,
    status_code=201,
    summary="Halt 1:N processing (identify, cameras, keep-enrolled anonymisation) until resumed",
)
def halt(body: HaltIn, core: Core, who: HaltAdmin) -> halt_uc.HaltOut:
    return halt_uc.halt(core, body.scope, body.reason, who.actor)


@router.delete(
    "/halts/{scope}",
    response_model=halt_uc.HaltOut,
    summary="Resume: lift the halt of this scope (404 if it is not halted)",
)
def resume(
    scope: Annotated[str, Path(max_length=80, description=SCOPE_HELP)],
    core: Core,
    who: HaltAdmin,
) -> halt_uc.HaltOut:
    return halt_uc.resume(core, scope, who.actor)
