"""The CLI closes its core at exit: a webhook queued by a command's last action is delivered,
not lost with the delivery thread when the process ends (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Receiver, make_app


def test_a_webhook_sent_by_the_last_action_of_a_cli_run_is_delivered(
    tmp_path: Path, receiver: Receiver
) -> None:
    url = receiver.url
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
    heads = [m for m in receiver.messages() if m.get("type") == "audit.head"]
    assert heads, "the queued webhook was lost when the CLI exited"
    assert heads[-1]["seq"] == head["seq"]
