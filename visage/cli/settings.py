"""``visage config show``: the effective settings, secrets masked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import _core, _emit_json, app, guarded, out
from visage.cli._lazy import lazy_call

if TYPE_CHECKING:
    from rich.table import Table
else:
    Table = lazy_call("rich.table", "Table")

config_app = typer.Typer(
    help="The effective settings.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(config_app, name="config")


@config_app.command("show")
@guarded
def config_show(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Print every setting as it is in force (environment, VISAGE_CONFIG file, defaults);
    the master key, the webhook secret and passwords or tokens in URLs are masked."""
    shown = _core().settings.masked()
    if json_out:
        _emit_json(shown)
        return
    table = Table(title="Visage settings")
    table.add_column("setting")
    table.add_column("value")
    for name, value in shown.items():
        table.add_row(name, "" if value is None else str(value))
    out.print(table)
