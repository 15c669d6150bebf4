"""``visage serve``'s process concerns: the command line that reaches the same data as the
running server, and a uvicorn server that ends with exit status 0 after a graceful shutdown,
on SIGTERM (``docker stop``, systemd) as on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def cli_command() -> str:
    """How to call this very CLI, on the same data as this process: ``VISAGE_HOME=…`` when
    the server got its data directory from there (``make run`` sets ``.visage``), then the
    executable as it was started (``.venv/bin/visage`` when that is not the ``visage`` on
    the PATH)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "visage":
        on_path = shutil.which("visage")
        same = on_path is not None and Path(on_path).resolve() == argv0.resolve()
        exe = "visage" if same else _short_path(argv0)
    else:  # python -m visage
        exe = f"{_short_path(Path(sys.executable))} -m visage"
    home = os.environ.get("VISAGE_HOME")
    return f"VISAGE_HOME={home} {exe}" if home else exe


def _short_path(path: Path) -> str:
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


def run_server(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then shut down gracefully (requests in flight
    finish, cameras and housekeeping stop, queued notifications are flushed) and return."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises a caught signal once shut down, so that SIGTERM ends the
            # process as signal 15 and Ctrl-C as a KeyboardInterrupt (exit 130). The
            # shutdown was graceful and asked for: exit status 0 instead.
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10
    )
    _Server(config).run()
