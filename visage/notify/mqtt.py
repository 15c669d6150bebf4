"""MQTT: events published for Frigate / Home Assistant style consumers.

Messages go to ``<topic>/<kind>`` (for example ``visage/event``, ``visage/match.confirmed``)
as JSON with QoS 1; like the webhooks they carry subject ids, never names or images. The
client connects in the background and reconnects by itself; a broker that is down never
blocks recognition (paho queues messages while disconnected).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

from visage.errors import VisageError

log = logging.getLogger("visage.mqtt")


class MqttPublisher:
    def __init__(self, url: str, topic: str = "visage") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise VisageError(
                f"MQTT URL must look like mqtt://[user:pass@]host[:port], not {url!r}"
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

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        body = json.dumps({"type": kind, **payload}, default=str, sort_keys=True)
        info = self.client.publish(f"{self.topic}/{kind}", body, qos=1)
        if info.rc == 4:  # not connected (yet): paho queues it and sends on connection
            log.info("MQTT not connected; %s/%s queued", self.topic, kind)
        elif info.rc != 0:
            log.warning("MQTT publish to %s/%s failed (rc %s)", self.topic, kind, info.rc)
        self.published += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
