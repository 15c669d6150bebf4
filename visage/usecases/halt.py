"""Stop and resume 1:N processing (AI Act Art. 14(4)(e)): the use-cases every door calls.

The halt sits in the core's store, so a halt set by any door (API, CLI, web console) stops
every process that searches: :class:`~visage.usecases.matching.PurposeMatcher` refuses a
new run, and a running ``watch`` (a camera's worker included) polls :class:`HaltPoll` and
ends within about a second. Halting and resuming are audited with the actor; resuming is
explicit — nothing lifts a halt but :func:`resume`.
"""

from __future__ import annotations

import time
from datetime import datetime

from pydantic import BaseModel, Field

from visage.core import Visage
from visage.errors import NotFoundError
from visage.governance import halt as rules
from visage.governance.audit import Actor
from visage.governance.audit_ops import HaltAudit, ResumeAudit
from visage.governance.halt import HaltedError, HaltScope, parse_scope
from visage.store.schema import HaltRow

__all__ = [
    "HaltOut",
    "HaltPoll",
    "HaltedError",
    "check_not_halted",
    "halt",
    "list_halts",
    "resume",
]


class HaltOut(BaseModel):
    scope: str = Field(description="all, camera:<name> or purpose:<purpose>")
    reason: str
    actor: str = Field(description="who halted it")
    at: datetime = Field(description="when it was halted")
    active: bool = Field(description="false in the answer to a resume: the halt was lifted")


def _out(row: HaltRow, *, active: bool = True) -> HaltOut:
    return HaltOut(scope=row.scope, reason=row.reason, actor=row.actor, at=row.at, active=active)


def _scope(scope: str | HaltScope) -> HaltScope:
    return scope if isinstance(scope, HaltScope) else parse_scope(scope)


def halt(core: Visage, scope: str | HaltScope, reason: str, actor: Actor | None = None) -> HaltOut:
    """Halt 1:N processing for ``scope`` until :func:`resume`; audited."""
    target, who = _scope(scope), actor or Actor.local()
    with core.store.session() as session:
        row = rules.set_halt(session, target, reason, who.id)
        core.audit(session, who, HaltAudit(scope=row.scope, reason=row.reason))
        return _out(row)


def resume(core: Visage, scope: str | HaltScope, actor: Actor | None = None) -> HaltOut:
    """Lift the halt of ``scope`` (:class:`NotFoundError` if it is not halted); audited.
    Cameras it stopped are started again by their workers within about a second."""
    target, who = _scope(scope), actor or Actor.local()
    with core.store.session() as session:
        row = rules.clear_halt(session, target)
        if row is None:
            raise NotFoundError(f"{target} is not halted")
        core.audit(session, who, ResumeAudit(scope=row.scope))
        return _out(row, active=False)


def list_halts(core: Visage) -> list[HaltOut]:
    """Every halt in place, oldest first."""
    with core.store.session() as session:
        return [_out(r) for r in rules.active(session)]


def blocking(core: Visage, purpose: str, camera: str | None = None) -> HaltOut | None:
    """The halt that stops 1:N processing for ``purpose`` (on ``camera``), if any."""
    with core.store.session() as session:
        row = rules.blocking(session, purpose, camera)
        return None if row is None else _out(row)


def check_not_halted(core: Visage, purpose: str, camera: str | None = None) -> None:
    """Raise :class:`HaltedError` if a halt covers ``purpose`` (or ``camera``). Not
    audited here: :meth:`PurposeMatcher.check_gate` audits its refusals itself."""
    with core.store.session() as session:
        row = rules.blocking(session, purpose, camera)
    if row is not None:
        raise HaltedError(row)


class HaltPoll:
    """A running 1:N loop's view of the halts: :meth:`check` reads the store at most once
    every ``interval_s`` seconds (not once per frame) and remembers what it saw."""

    def __init__(
        self, core: Visage, purpose: str, camera: str | None = None, interval_s: float = 1.0
    ) -> None:
        self.core, self.purpose, self.camera, self.interval_s = core, purpose, camera, interval_s
        self._next = 0.0
        self.halt: HaltOut | None = None

    def check(self) -> HaltOut | None:
        """The halt in force (as of the last read), or None."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval_s
            self.halt = blocking(self.core, self.purpose, self.camera)
        return self.halt
