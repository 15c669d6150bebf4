"""The Stop switch: a human halts 1:N processing (AI Act Art. 14(4)(e)).

A halt has a scope:

* ``all`` — every 1:N search: identify, cameras and ``watch``, ``anonymize --keep-enrolled``;
* ``camera:<name>`` — one camera (the supervisor's worker, or ``watch --camera <name>``);
* ``purpose:<purpose>`` — every 1:N search for that purpose, cameras included.

Detection, 1:1 verification and anonymisation that blurs everyone are not 1:N processing
and are never halted: blurring is itself a safeguard and must keep working during a halt.

A halt is a row of ``halts`` until it is explicitly lifted; nothing expires it. The
functions here work on a Session; the use-cases (:mod:`visage.usecases.halt`) audit them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from visage.errors import InputError, VisageError
from visage.governance.consent import normalise_purpose
from visage.store.schema import HaltRow

REASON_MAX = 500
_CAMERA = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class HaltKind(StrEnum):
    all = "all"
    camera = "camera"
    purpose = "purpose"


@dataclass(frozen=True, slots=True)
class HaltScope:
    """What a halt covers; ``str(scope)`` is its stored and shown form."""

    kind: HaltKind
    name: str = ""

    def __str__(self) -> str:
        return self.kind.value if self.kind is HaltKind.all else f"{self.kind.value}:{self.name}"

    @classmethod
    def all(cls) -> HaltScope:
        return cls(HaltKind.all)

    @classmethod
    def camera(cls, name: str) -> HaltScope:
        return parse_scope(f"camera:{name}")

    @classmethod
    def purpose(cls, purpose: str) -> HaltScope:
        return parse_scope(f"purpose:{purpose}")


class HaltedError(VisageError):
    """1:N processing refused because an admin halted it; it stays refused until an admin
    resumes it explicitly."""

    def __init__(self, halt: HaltRow) -> None:
        super().__init__(
            f"1:N processing is halted ({halt.scope}): {halt.reason}; until an admin "
            "resumes it, nothing is searched"
        )
        self.scope = halt.scope
        self.reason = halt.reason


def parse_scope(text: str) -> HaltScope:
    """``all``, ``camera:<name>`` or ``purpose:<purpose>``, else :class:`InputError`."""
    raw = text.strip()
    if raw.lower() == "all":
        return HaltScope(HaltKind.all)
    kind, sep, name = raw.partition(":")
    kind = kind.strip().lower()
    name = name.strip()
    if sep and kind == HaltKind.camera and _CAMERA.match(name):
        return HaltScope(HaltKind.camera, name)
    if sep and kind == HaltKind.purpose:
        try:
            return HaltScope(HaltKind.purpose, normalise_purpose(name))
        except VisageError as exc:
            raise InputError(f"halt scope {text!r}: {exc.message}") from exc
    raise InputError(
        f"invalid halt scope {text!r}: use 'all', 'camera:<name>' or 'purpose:<purpose>'"
    )


def covering(purpose: str, camera: str | None = None) -> list[str]:
    """The scopes whose halt stops 1:N processing for ``purpose`` (on ``camera``)."""
    scopes = ["all", str(HaltScope(HaltKind.purpose, normalise_purpose(purpose)))]
    if camera is not None:
        scopes.append(str(HaltScope(HaltKind.camera, camera)))
    return scopes


def set_halt(session: Session, scope: HaltScope, reason: str, actor: str) -> HaltRow:
    """Halt ``scope`` (a halt already in place keeps its time; reason and actor are the
    latest). The reason is required: whoever resumes must know why it was stopped."""
    clean = " ".join(reason.split())
    if not clean:
        raise InputError("a halt needs a reason")
    if len(clean) > REASON_MAX:
        raise InputError(f"a halt reason has at most {REASON_MAX} characters")
    row = session.get(HaltRow, str(scope))
    if row is None:
        row = HaltRow(scope=str(scope), reason=clean, actor=actor[:100], at=datetime.now(UTC))
        session.add(row)
    else:
        row.reason, row.actor = clean, actor[:100]
    session.flush()
    return row


def clear_halt(session: Session, scope: HaltScope) -> HaltRow | None:
    """Lift the halt of ``scope``; the row that was removed, or None if there was none."""
    row = session.get(HaltRow, str(scope))
    if row is not None:
        session.delete(row)
        session.flush()
    return row


def active(session: Session) -> list[HaltRow]:
    """Every halt in place, oldest first."""
    return list(session.scalars(select(HaltRow).order_by(HaltRow.at, HaltRow.scope)))


def blocking(session: Session, purpose: str, camera: str | None = None) -> HaltRow | None:
    """The halt that stops 1:N processing for ``purpose`` (on ``camera``), if any:
    ``all`` first, then the purpose, then the camera. One indexed query."""
    scopes = covering(purpose, camera)
    rows = {r.scope: r for r in session.scalars(select(HaltRow).where(HaltRow.scope.in_(scopes)))}
    return next((rows[s] for s in scopes if s in rows), None)
