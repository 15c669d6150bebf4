"""Webhooks: JSON POSTs signed with HMAC-SHA256, one delivery thread per receiver.

The receiver checks ``X-Visage-Signature: sha256=<hex>`` = HMAC(secret, body). Every body
carries a unique ``id`` and the time it was ``sent_at`` inside the signed bytes, so a
receiver can refuse a replayed message (seen id, or a time too far in the past). Payloads
carry subject ids, never names or images.

Each receiver has its own queue and thread: a receiver that hangs, answers garbage or
crashes the HTTP client delays and fails only its own messages. Every exception of a
delivery attempt is caught, counted and retried with exponential backoff; after the last
attempt the message is dropped and counted. Sending never blocks recognition.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from visage.masking import mask_url

log = logging.getLogger("visage.webhooks")

SIGNATURE_HEADER = "X-Visage-Signature"
QUEUE_SIZE = 1000


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The message as sent: its kind, a unique id and the sending time, then the payload."""
    return {
        **payload,
        "type": kind,
        "id": uuid.uuid4().hex,
        "sent_at": datetime.now(UTC).isoformat(),
    }


@dataclass
class ReceiverStats:
    """Counters of one receiver (what ``/metrics`` and tests read)."""

    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class _Receiver:
    """One URL: a bounded queue drained by its own daemon thread."""

    def __init__(self, url: str, sender: WebhookSender) -> None:
        self.url, self.sender = url, sender
        self.stats = ReceiverStats()
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, body: bytes) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"webhook {mask_url(self.url)}", daemon=True
                )
                self._thread.start()
        try:
            self.queue.put_nowait(body)
        except queue.Full:
            self.stats.dropped += 1

    def _run(self) -> None:
        while True:
            body = self.queue.get()
            try:
                if body is None:
                    return
                if self._deliver(body):
                    self.stats.delivered += 1
                else:
                    self.stats.failed += 1
            finally:
                self.queue.task_done()

    def _deliver(self, body: bytes) -> bool:
        s = self.sender
        headers = {"Content-Type": "application/json", "User-Agent": "visage-webhook/1"}
        if s.secret:
            headers[SIGNATURE_HEADER] = sign(s.secret, body)
        for attempt in range(s.attempts):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=s.timeout_s) as response:
                    if 200 <= response.status < 300:
                        return True
                    problem = f"HTTP {response.status}"
            except Exception as exc:  # any failure of one receiver stays with that receiver
                problem = type(exc).__name__
            self.stats.errors[problem] = self.stats.errors.get(problem, 0) + 1
            log.warning(
                "webhook %s attempt %d/%d failed: %s",
                mask_url(self.url),
                attempt + 1,
                s.attempts,
                problem,
            )
            if attempt + 1 < s.attempts:
                time.sleep(s.backoff_s * 2**attempt)
        return False

    def close(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self.queue.put(None)


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
        self.secret = secret
        self.attempts, self.timeout_s, self.backoff_s = attempts, timeout_s, backoff_s
        self.receivers = [_Receiver(url, self) for url in dict.fromkeys(urls)]

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.receivers]

    @property
    def delivered(self) -> int:
        return sum(r.stats.delivered for r in self.receivers)

    @property
    def failed(self) -> int:
        """Messages given up on: failed after every attempt, or dropped on a full queue."""
        return sum(r.stats.failed + r.stats.dropped for r in self.receivers)

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue one message for every receiver (never blocks; a full queue drops and
        counts). ``payload`` may already be an :func:`envelope`."""
        if not self.receivers:
            return
        message = payload if "id" in payload and "sent_at" in payload else envelope(kind, payload)
        body = json.dumps(message, default=str, sort_keys=True).encode()
        for receiver in self.receivers:
            receiver.put(body)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until queued messages are delivered or given up (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while any(r.queue.unfinished_tasks for r in self.receivers) and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        for receiver in self.receivers:
            receiver.close()
