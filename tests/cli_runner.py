"""The ``visage`` command for tests: in this process (fast), or as a real process.

A real process pays about two seconds of interpreter, import and model start-up per call, so
most CLI tests call :func:`run`, which invokes :data:`visage.cli.app` with Typer's
``CliRunner`` and returns what a process would have: exit status, stdout and stderr. A few
tests keep :func:`run_process` to hold the contract of the real executable (exit codes, one
line on stderr, one JSON document on stdout).

So that the in-process call asserts no less than a process would, :func:`run` also collects
what bypasses ``sys.stdout`` / ``sys.stderr``: writes to file descriptors 1 and 2 (native
libraries such as ONNX Runtime log there) and Python warnings under the interpreter's default
filters (pytest would otherwise swallow them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from tests.pg import database_url_of
from visage.cli import _base as cli_base
from visage.cli import app as cli_app


@dataclass(frozen=True, slots=True)
class CliResult:
    """What a finished ``visage`` process shows: the fields of ``CompletedProcess``."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _fd_output(fd: int) -> Iterator[list[str]]:
    """Redirects the OS-level descriptor ``fd`` to a file; yields a list that receives
    what was written there once the block ends."""
    written: list[str] = []
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield written
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            written.append(sink.read().decode(errors="replace"))


def _default_warning_filters() -> None:
    """The filters of a fresh interpreter (``python -m visage``), replacing pytest's."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")


def _store_env(home: Path) -> dict[str, str]:
    """``--store=postgresql`` runs: the database of the data dir ``home`` (tests.pg)."""
    url = database_url_of(home)
    return {} if url is None else {"VISAGE_DATABASE_URL": url}


def run(home: Path, *args: str, input: str | None = None, **env: str) -> CliResult:
    """``visage ARGS`` with ``VISAGE_HOME=home`` (and ``env``), in this process; ``input``
    is what the command reads on standard input.

    An exception that escapes the command (a bug in the CLI's own error handling, which a
    process would show as a traceback) is raised here rather than folded into a status.
    """
    # A process makes its consoles on first use, sized from its own COLUMNS; one made by an
    # earlier call in this process would keep that call's width.
    for console in (cli_base.out, cli_base.err):
        console._made = None
    runner = CliRunner()
    with (
        warnings.catch_warnings(record=True) as caught,
        _fd_output(2) as fd_err,
        _fd_output(1) as fd_out,
    ):
        _default_warning_filters()
        result = runner.invoke(
            cli_app,
            list(args),
            input=input,
            env={"VISAGE_HOME": str(home), **_store_env(home), **env},
            catch_exceptions=False,
        )
    shown = "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught
    )
    return CliResult(
        args=["visage", *args],
        returncode=result.exit_code,
        stdout=fd_out[0] + result.stdout,
        stderr=fd_err[0] + shown + result.stderr,
    )


def run_process(home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """``python -m visage ARGS`` as a real process, with ``VISAGE_HOME=home`` (and
    ``extra_env``) and no other ``VISAGE_*`` variable of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
    env["VISAGE_HOME"] = str(home)
    env.update(_store_env(home))
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "visage", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
