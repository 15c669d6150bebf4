"""``visage migrate-store --to URL``: move a data dir's SQLite store into PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import JsonFlag, _core, _emit_json, app, guarded, out
from visage.cli._lazy import lazy

if TYPE_CHECKING:  # imported when the command runs (see visage.cli._lazy)
    from visage.usecases import migrate_store as migrate_uc
else:
    migrate_uc = lazy("visage.usecases.migrate_store")


@app.command("migrate-store")
@guarded
def migrate_store(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The empty PostgreSQL database to copy into: postgresql+psycopg://user:pass@host/db.",
            show_default=False,
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Copy this data dir's SQLite store into an empty PostgreSQL database and verify the
    copy (rows per table, gallery digest, audit chain). The SQLite file is left as it was;
    stop `visage serve` first. Then set VISAGE_DATABASE_URL to use the copy."""
    from rich.table import Table

    report = migrate_uc.migrate_store(_core(), to)
    if as_json:
        _emit_json(report)
        return
    table = Table(title=f"{report.source} -> {report.target}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for copied in report.tables:
        table.add_row(copied.table, str(copied.rows))
    table.add_row("all", str(report.rows))
    out.print(table)
    out.print(
        f"copied and verified in {report.seconds:.1f} s: every table's rows equal, gallery "
        f"digest {report.gallery_digest[:16]} equal, audit log intact on the target "
        f"({report.audit_entries} entries); the SQLite file was left as it was"
    )
    out.print(f"next: {report.next_step}")
