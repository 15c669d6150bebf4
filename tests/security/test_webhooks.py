"""Attack: a broken webhook receiver must not stop delivery to the others, and a captured
message must be recognisable when replayed (issue 11, item 12)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.conftest import Receiver
from visage.notify import Notifier
from visage.notify.webhooks import SIGNATURE_HEADER

SECRET = "webhook-test-secret"


def _garbage_server() -> tuple[socket.socket, threading.Thread]:
    """A receiver that answers every request with bytes that are not HTTP: the client
    raises http.client.BadStatusLine, which is neither an OSError nor a URLError."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"NOT-HTTP garbage\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, thread


@pytest.fixture()
def receivers() -> Iterator[tuple[str, Receiver]]:
    good = Receiver()
    bad, _ = _garbage_server()
    yield f"http://127.0.0.1:{bad.getsockname()[1]}/hook", good
    good.close()
    bad.close()


def test_a_broken_receiver_never_stops_delivery_to_the_others(
    receivers: tuple[str, Receiver],
) -> None:
    bad_url, good = receivers
    notifier = Notifier([bad_url, good.url], SECRET)
    notifier.webhooks.backoff_s = 0.01
    for n in range(3):
        notifier.send("event", {"subject_id": f"s{n}"})
    notifier.flush(10)
    assert len(good.received) == 3
    stats = {r.url: r.stats for r in notifier.webhooks.receivers}
    assert stats[bad_url].failed == 3 and stats[bad_url].delivered == 0
    assert stats[bad_url].errors  # each failed attempt was counted by its kind
    assert notifier.webhooks.delivered == 3 and notifier.webhooks.failed == 3
    # still alive after the failures: a fourth message gets through too
    notifier.send("event", {"subject_id": "s3"})
    notifier.flush(10)
    assert len(good.received) == 4
    notifier.close()


def test_every_message_carries_a_signed_id_and_time(receivers: tuple[str, Receiver]) -> None:
    _, good = receivers
    notifier = Notifier([good.url], SECRET)
    before = datetime.now(UTC)
    notifier.send("match.confirmed", {"review_id": "r1"})
    notifier.send("match.confirmed", {"review_id": "r1"})
    notifier.flush(10)
    ids = set()
    for headers, body in good.received:
        signature = headers[SIGNATURE_HEADER]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected)  # id and time are inside the MAC
        message = json.loads(body)
        assert message["type"] == "match.confirmed" and message["review_id"] == "r1"
        assert datetime.fromisoformat(message["sent_at"]) >= before
        ids.add(message["id"])
    assert len(ids) == 2  # the same content sent twice is still two distinguishable messages
    notifier.close()
