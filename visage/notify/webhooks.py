"""Webhooks: JSON POSTs signed with HMAC-SHA256, sent from a background thread.

The receiver checks ``X-Visage-Signature: sha256=<hex>`` = HMAC(secret, body). Payloads
carry subject ids, never names or images. A failed delivery is retried with backoff, then
dropped and counted; sending never blocks recognition.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("visage.webhooks")

SIGNATURE_HEADER = "X-Visage-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(
        self,
        urls: list[str],
        secret: str | None,
        *,
        attempts: int = 3,
        timeout_s: float = 5.0,
        backoff_s: float = 0.5,
    ) -> None:
        self.urls, self.secret = list(urls), secret
        self.attempts, self.timeout_s, self.backoff_s = attempts, timeout_s, backoff_s
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue one message for every URL; drops (and counts) when the queue is full."""
        if not self.urls:
            return
        body = json.dumps({"type": kind, **payload}, default=str, sort_keys=True).encode()
        self._start()
        for url in self.urls:
            try:
                self._queue.put_nowait((url, body))
            except queue.Full:
                self.failed += 1

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            url, body = item
            if self._deliver(url, body):
                self.delivered += 1
            else:
                self.failed += 1
            self._queue.task_done()

    def _deliver(self, url: str, body: bytes) -> bool:
        headers = {"Content-Type": "application/json", "User-Agent": "visage-webhook/1"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        for attempt in range(self.attempts):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        return True
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.warning("webhook %s attempt %d failed: %s", url, attempt + 1, exc)
            time.sleep(self.backoff_s * 2**attempt)
        return False

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until queued messages are delivered or dropped (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
