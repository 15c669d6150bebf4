"""The ``visage`` command: a thin adapter over :mod:`visage.usecases`.

Contract: ``--json`` on every command prints exactly one JSON document on stdout; without
it, readable tables. Exit status 0 = ok, 1 = a negative result (no match, not the same
person), 2 = bad input or usage, 3 = installation problem (model or key missing).
Errors are one line on stderr, never a traceback (set VISAGE_DEBUG=1 to see one).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import typer

from visage.cli._lazy import lazy_object
from visage.errors import VisageError

if TYPE_CHECKING:  # imported by the commands that use them: `visage --help` needs none
    from pydantic import BaseModel
    from rich.console import Console
    from rich.progress import Progress

    from visage.core import Visage

app = typer.Typer(
    name="visage",
    help="Privacy-by-design face recognition: consent-only gallery, offline models.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=True,  # visage --install-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
)
subject_app = typer.Typer(
    help="Subjects (consenting people) and their consent records.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(subject_app, name="subject")
keys_app = typer.Typer(
    help="API keys: roles and purposes.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(keys_app, name="keys")
profile_app = typer.Typer(
    help="The deployment profile and the gates it sets on 1:N.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(profile_app, name="profile")
bench_app = typer.Typer(
    help="Measure performance on this machine.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(bench_app, name="bench")


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr)


# Made on first use: rich costs as much to import as Typer, and `--help` prints without it.
out: Console = lazy_object(lambda: _console(stderr=False))
err: Console = lazy_object(lambda: _console(stderr=True))

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document, no table.")]
AuthorisationRef = Annotated[
    str | None,
    typer.Option(
        "--authorisation-ref",
        help="Reference of the authorisation for this search (AI Act Art. 26(10)); "
        "required for a law-enforcement operator in a public space.",
    ),
]
ImageArg = Annotated[
    Path, typer.Argument(help="Image file (JPEG, PNG, WebP, BMP, TIFF).", show_default=False)
]


P = ParamSpec("P")


class _Exit(Exception):
    """Ends a command with a status code after its output was printed."""

    def __init__(self, code: int) -> None:
        self.code = code


def guarded(fn: Callable[P, None]) -> Callable[P, None]:
    """Turns every failure of a command into one line on stderr and an exit status."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        debug = os.environ.get("VISAGE_DEBUG") == "1"
        try:
            with _opened_cores():
                fn(*args, **kwargs)
        except _Exit as stop:
            raise typer.Exit(stop.code) from None
        except VisageError as exc:
            if debug:
                raise
            from visage.cli.hints import hint_for  # loaded only when a command fails

            hint = hint_for(exc)
            suffix = f" (hint: {hint})" if hint else ""
            print(f"visage: error: {exc.message}{suffix}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # the last line of defence: no traceback reaches a user
            if debug:
                raise
            print(
                f"visage: internal error: {type(exc).__name__}: {exc} "
                "(set VISAGE_DEBUG=1 for details)",
                file=sys.stderr,
            )
            raise typer.Exit(3) from None

    return wrapper


_cores: list[Visage] = []
"""The cores this command opened; :func:`guarded` closes them when the command ends."""


@contextlib.contextmanager
def _opened_cores() -> Iterator[None]:
    """Close every core the command opened, on success or failure, so that queued webhooks
    and MQTT messages (a review confirmation, the last events of ``watch``) are delivered
    before the process exits instead of dying with their daemon threads. A failure to close
    is reported on stderr and never replaces the command's own outcome."""
    try:
        yield
    finally:
        while _cores:
            core = _cores.pop()
            try:
                core.close()
            except Exception as exc:
                print(f"visage: warning: closing failed: {type(exc).__name__}", file=sys.stderr)


def _core() -> Visage:
    from pydantic import ValidationError

    from visage.config import Settings
    from visage.core import Visage

    try:
        core = Visage(Settings())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise VisageError(
            f"invalid setting {where}: {first['msg']} (environment variable "
            "VISAGE_* or the TOML file in VISAGE_CONFIG)"
        ) from exc
    _cores.append(core)
    return core


def _emit_json(data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    from pydantic import BaseModel

    if isinstance(data, BaseModel):
        payload: Any = data.model_dump(mode="json")
    elif isinstance(data, Sequence):
        payload = [d.model_dump(mode="json") for d in data]
    else:
        payload = data
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def _print_metrics(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


def _progress(*, hidden: bool = False) -> Progress:
    """A progress bar on stderr when it is a terminal; none with ``hidden`` (``--json``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=hidden or not err.is_terminal,
    )
