"""``visage signage CAMERA --out sign.pdf``: the printable sign of a camera (A4 or A5, PDF or
PNG by the file's suffix), and the check of heads saved from ``/public/audit-head.json``
used by ``visage audit verify --witness``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import _core, app, err, guarded, out
from visage.cli._lazy import lazy
from visage.errors import InputError

if TYPE_CHECKING:  # imported when a command runs (see visage.cli._lazy)
    from visage.core import Visage
    from visage.governance.audit import VerifyReport
    from visage.usecases import public_info
    from visage.usecases import signage as signage_uc
else:
    public_info = lazy("visage.usecases.public_info")
    signage_uc = lazy("visage.usecases.signage")

SUFFIXES = {".pdf": "pdf", ".png": "png"}


@app.command()
@guarded
def signage(
    camera: Annotated[str, typer.Argument(help="Camera name (or its notice slug).")],
    file_out: Annotated[
        Path, typer.Option("--out", help="Where to write the sign: a .pdf or a .png file.")
    ],
    size: Annotated[str, typer.Option("--size", help="Paper size: A4 or A5.")] = "A4",
) -> None:
    """The sign to put up at a camera: pictogram, what it does and why, the controller, a
    short URL and a QR code to its public notice. Says DRAFT while VISAGE_PUBLIC_URL is
    unset."""
    fmt = SUFFIXES.get(file_out.suffix.lower())
    if fmt is None:
        raise InputError(f"--out {file_out}: name a .pdf or a .png file")
    if size.upper() not in ("A4", "A5"):
        raise InputError(f"--size {size!r}: expected A4 or A5")
    made = signage_uc.sign(
        _core(), camera, signage_uc.SignFormat(fmt), signage_uc.SignSize(size.upper())
    )
    try:
        file_out.write_bytes(made.data)
    except OSError as exc:
        raise InputError(f"--out {file_out}: cannot write it ({exc.strerror})") from exc
    out.print(f"wrote the {made.size.value} sign of camera {made.camera} to {file_out}")
    out.print(f"its QR code opens {made.url}")
    if made.draft:
        err.print("visage: DRAFT sign: set VISAGE_PUBLIC_URL to the address of the public pages")


def check_witness_file(core: Visage, path: Path, report: VerifyReport) -> None:
    """Check the heads saved in ``path`` against the chain ``report`` found intact; a
    failure turns the report BROKEN with its reason (the caller prints it)."""
    result = public_info.check_saved_heads(core, public_info.read_saved_heads(path), report)
    if not result.ok:
        report.ok, report.problem = False, f"witness file {path}: {result.problem}"
        return
    purged = f" ({result.purged} in the purged part: signature checked)" if result.purged else ""
    err.print(f"witness file {path}: {result.heads} saved heads hold{purged}", soft_wrap=True)
