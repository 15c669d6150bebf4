"""`visage serve` as a real process (issue 14 §4): its start-up hint names the data it really
uses, so following it changes the running server's profile; SIGTERM, as Ctrl-C, ends it
with exit status 0 after a graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_serve import _free_port


def _start(home: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
    env.update(VISAGE_HOME=str(home), COLUMNS="80")  # narrow: hints must not be cut
    return subprocess.Popen(
        [sys.executable, "-m", "visage", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(240):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.25)
    raise AssertionError("the server did not become ready")


def _lines_until(proc: subprocess.Popen[str], marker: str) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in iter(proc.stdout.readline, ""):
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no line with {marker!r} in {lines}")


def test_the_start_up_hint_reaches_the_running_servers_data(tmp_path: Path) -> None:
    home, port = tmp_path / "home", _free_port()
    proc = _start(home, port)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, proc)
        lines = _lines_until(proc, "note:")
        key = next(line.split()[-1] for line in lines if "admin API key" in line)
        note = lines[-1]
        assert "DPIA" in note
        hinted = note.split("(hint: ", 1)[1].removesuffix(")")
        assert hinted.startswith(f"VISAGE_HOME={home} ")
        assert hinted.endswith("profile set --dpia-ref REF")
        assert any(line.startswith(f"the CLI on this data: VISAGE_HOME={home} ") for line in lines)
        # Follow the hint as a user would, in a shell with no VISAGE_HOME of its own.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
        done = subprocess.run(
            ["bash", "-c", hinted.replace("REF", "DPIA-2026-14")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        profile = httpx.get(f"{base}/v1/profile", headers={"X-API-Key": key}).json()
        assert profile["dpia_ref"] == "DPIA-2026-14"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_0_after_a_graceful_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    port = _free_port()
    proc = _start(tmp_path / "home", port)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr
    with pytest.raises(httpx.HTTPError):  # it really stopped listening
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
