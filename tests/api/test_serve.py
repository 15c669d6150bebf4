"""`visage serve` as `make run` starts it, as a real process: it prints where to go, a first
admin key and the command line of the CLI on its data; following its start-up hint changes
the running server's profile (issue 14 §4); SIGTERM (``docker stop``, systemd) ends it with
exit status 0 after a graceful shutdown. Ctrl-C: tests/test_serve_signal.py.

One server run holds all of these: each start costs seconds of interpreter, import and
first-start set-up, and none of the claims needs a server of its own.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(home: Path, port: int) -> subprocess.Popen[str]:
    """``python -m visage serve`` on ``home``, in a shell 80 columns wide (the hints must not
    be cut there), with no ``VISAGE_*`` variable of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
    env.update(VISAGE_HOME=str(home), COLUMNS="80")
    return subprocess.Popen(
        [sys.executable, "-m", "visage", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    with httpx.Client(timeout=2) as http:  # one SSL context, not one per try
        for _ in range(240):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if http.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.25)
    raise AssertionError("the server did not become ready")


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    """Sends ``sig``; the exit status and stderr once the process has ended."""
    proc.send_signal(sig)
    code = proc.wait(timeout=30)
    return code, proc.stderr.read() if proc.stderr else ""


def _lines_until(proc: subprocess.Popen[str], marker: str, timeout_s: float = 60) -> list[str]:
    """stdout up to the first line holding ``marker``, read on a thread: a server that never
    prints it fails the test in a minute instead of blocking the suite on readline()."""
    assert proc.stdout is not None
    out = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in iter(out.readline, "")], daemon=True
    ).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        seen.append(line.rstrip("\n"))
        if marker in line:
            return seen
    raise AssertionError(f"no line with {marker!r} in {seen}")


def test_serve_prints_admin_key_and_hint_and_stops_cleanly(tmp_path: Path) -> None:
    home, port = tmp_path / "home", _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_serve(home, port)
    try:
        wait_ready(base, proc)
        lines = _lines_until(proc, "note:")
        assert any(f"{base}/" in line for line in lines)  # where to go
        key = next(line.split()[-1] for line in lines if "admin API key" in line)
        assert key.startswith("vsg_")
        r = httpx.get(f"{base}/v1/keys", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()[0]["role"] == "admin"

        # The start-up hint names the data the server really uses.
        note = lines[-1]
        assert "DPIA" in note
        hinted = note.split("(hint: ", 1)[1].removesuffix(")")
        assert hinted.startswith(f"VISAGE_HOME={home} ")
        assert hinted.endswith("profile set --dpia-ref REF")
        assert any(line.startswith(f"the CLI on this data: VISAGE_HOME={home} ") for line in lines)
        # Follow the hint as a user would, in a shell with no VISAGE_HOME of its own: the
        # running server's profile changes.
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
        code, stderr = stop(proc, signal.SIGTERM)
    # uvicorn re-raises the signal it caught; the graceful shutdown makes it exit status 0.
    assert code == 0, stderr
    assert "Traceback" not in stderr
    with pytest.raises(httpx.HTTPError):  # it really stopped listening
        httpx.get(f"{base}/healthz", timeout=2)
