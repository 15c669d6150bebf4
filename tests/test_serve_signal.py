"""`visage serve` as a real process ends with exit status 0 after a graceful shutdown on
Ctrl-C (SIGINT). Its start-up hint and SIGTERM are held by the one server run of
tests/api/test_serve.py (each server start costs seconds: one per signal)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.api.test_serve import _free_port, start_serve, stop, wait_ready


def test_serve_exits_0_after_a_graceful_shutdown_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    proc = start_serve(tmp_path / "home", port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
    finally:
        code, stderr = stop(proc, signal.SIGINT)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    with pytest.raises(httpx.HTTPError):  # it really stopped listening
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
