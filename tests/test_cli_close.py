"""The CLI closes its core at exit: a webhook queued by a command's last action is delivered,
not lost with the delivery thread when the process ends (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import make_app


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[dict[str, object]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    received: list[dict[str, object]] = []
    server.received = received  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_a_webhook_sent_by_the_last_action_of_a_cli_run_is_delivered(
    tmp_path: Path, receiver: tuple[str, list[dict[str, object]]]
) -> None:
    url, received = receiver
    home = tmp_path / "home"
    make_app(home).close()  # its last audit entry (the profile) is not signed yet
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
    env |= {"VISAGE_HOME": str(home), "VISAGE_WEBHOOK_URLS": json.dumps([url])}
    # Signing the audit head is the command's last action; it queues an `audit.head` webhook.
    r = subprocess.run(
        [sys.executable, "-m", "visage", "audit", "checkpoint", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    head = json.loads(r.stdout)
    # The process has exited: whatever reached the receiver was delivered before exit.
    heads = [m for m in received if m.get("type") == "audit.head"]
    assert heads, "the queued webhook was lost when the CLI exited"
    assert heads[-1]["seq"] == head["seq"]
