"""The Stop switch: ``visage halt``, ``visage resume``, ``visage halts`` (Art. 14(4)(e)).

The CLI acts as the local admin (whoever holds the data dir and its master key), as for
``visage keys``; the halt is stored in the core, so a running server obeys it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import JsonFlag, _core, _emit_json, app, guarded, out
from visage.cli._lazy import lazy, lazy_call
from visage.errors import InputError

if TYPE_CHECKING:  # imported when a command runs (see visage.cli._lazy)
    from rich.table import Table

    from visage.governance import halt as halts_policy
    from visage.governance.halt import HaltScope
    from visage.usecases import halt as halt_uc
else:
    Table = lazy_call("rich.table", "Table")
    halts_policy = lazy("visage.governance.halt")
    halt_uc = lazy("visage.usecases.halt")

CameraOpt = Annotated[
    str | None, typer.Option("--camera", help="Only this camera (see `visage cameras list`).")
]
PurposeOpt = Annotated[str | None, typer.Option("--purpose", help="Only this purpose.")]


def _scope(camera: str | None, purpose: str | None) -> HaltScope:
    if camera is not None and purpose is not None:
        raise InputError("give --camera or --purpose, not both (neither: all 1:N processing)")
    if camera is not None:
        return halts_policy.HaltScope.camera(camera)
    if purpose is not None:
        return halts_policy.HaltScope.purpose(purpose)
    return halts_policy.HaltScope.all()


@app.command()
@guarded
def halt(
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is stopped (shown to whoever is refused).")
    ],
    camera: CameraOpt = None,
    purpose: PurposeOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Stop 1:N processing (identify, cameras, anonymize --keep-enrolled): all of it, one
    camera or one purpose, until `visage resume`. Detect, verify and plain anonymisation
    keep working."""
    done = halt_uc.halt(_core(), _scope(camera, purpose), reason)
    if as_json:
        _emit_json(done)
        return
    out.print(f"halted {done.scope}: {done.reason}")


@app.command()
@guarded
def resume(camera: CameraOpt = None, purpose: PurposeOpt = None, as_json: JsonFlag = False) -> None:
    """Lift a halt (the same scope as given to `visage halt`)."""
    done = halt_uc.resume(_core(), _scope(camera, purpose))
    if as_json:
        _emit_json(done)
        return
    out.print(f"resumed {done.scope}")


@app.command()
@guarded
def halts(as_json: JsonFlag = False) -> None:
    """The halts in place."""
    found = halt_uc.list_halts(_core())
    if as_json:
        _emit_json(found)
        return
    if not found:
        out.print("no halt: 1:N processing runs as the profile allows")
        return
    table = Table(title=f"{len(found)} halt(s)")
    for column in ("scope", "reason", "by", "since"):
        table.add_column(column)
    for h in found:
        table.add_row(h.scope, h.reason, h.actor, h.at.isoformat(timespec="seconds"))
    out.print(table)
