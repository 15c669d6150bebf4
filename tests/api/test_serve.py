"""`visage serve` as `make run` starts it: prints where to go and a first admin key, serves,
and stops cleanly on SIGTERM."""

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_admin_key_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
    env.update(VISAGE_HOME=str(tmp_path / "home"), COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "visage", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        key = None
        assert proc.stdout is not None
        # Read stdout on a thread: a server that never prints its key fails the test in a
        # minute instead of blocking the suite on readline().
        lines: queue.Queue[str] = queue.Queue()
        out = proc.stdout
        threading.Thread(
            target=lambda: [lines.put(line) for line in iter(out.readline, "")], daemon=True
        ).start()
        deadline = time.monotonic() + 60
        while key is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if "admin API key" in line:
                key = line.split()[-1]
        assert key and key.startswith("vsg_")
        r = httpx.get(f"{base}/v1/keys", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()[0]["role"] == "admin"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert code in (0, -signal.SIGTERM)
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
