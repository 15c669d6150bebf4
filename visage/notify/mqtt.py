"""MQTT: events published for Frigate / Home Assistant style consumers.

Messages go to ``<topic>/<kind>`` (for example ``visage/event``, ``visage/match.confirmed``)
as JSON with QoS 1; like the webhooks they carry subject ids, never names or images. The
client connects in the background and reconnects by itself; a broker that is down never
blocks recognition (paho queues messages while disconnected).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from visage.errors import VisageError
from visage.masking import mask_url

log = logging.getLogger("visage.mqtt")


class MqttPublisher:
    def __init__(self, url: str, topic: str = "visage") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise VisageError(
                f"MQTT URL must look like mqtt://[user:pass@]host[:port], not {mask_url(url)!r}"
            )
        self.topic = topic.rstrip("/")
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"visage-{uuid.uuid4().hex[:8]}"
        )
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        if parts.scheme == "mqtts":
            self.client.tls_set()
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(parts.hostname, port)
        self.client.loop_start()
        self.published = 0
        # QoS 1 message ids not yet acknowledged by the broker. paho's own
        # MessageInfo.is_published() raises for a message queued while disconnected, so
        # acknowledgements are counted here from on_publish instead.
        self._lock = threading.Lock()
        self._unacked: set[int] = set()
        self._acked_early: set[int] = set()
        self.client.on_publish = self._on_publish

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        body = json.dumps({"type": kind, **payload}, default=str, sort_keys=True)
        info = self.client.publish(f"{self.topic}/{kind}", body, qos=1)
        if info.rc == 4:  # not connected (yet): paho queues it and sends on connection
            log.info("MQTT not connected; %s/%s queued", self.topic, kind)
        elif info.rc != 0:
            log.warning("MQTT publish to %s/%s failed (rc %s)", self.topic, kind, info.rc)
        self.published += 1
        with self._lock:
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
            else:
                self._unacked.add(info.mid)

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, *_rest: Any) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:  # acknowledged before publish() returned its id to us
                self._acked_early.add(mid)

    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._unacked)

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) until the broker has acknowledged what was published — a CLI
        command's last events must not die with the process — then disconnect."""
        deadline = time.monotonic() + timeout_s
        while self.unacknowledged() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.unacknowledged():
            log.warning("MQTT: %d message(s) not acknowledged at close", self.unacknowledged())
        self.client.disconnect()
        self.client.loop_stop()
