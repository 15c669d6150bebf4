"""Delivery of events to other systems: webhooks and MQTT, behind one ``Notifier``."""

from __future__ import annotations

from typing import Any

from visage.notify.webhooks import WebhookSender, envelope


class Notifier:
    """Sends each message to the webhooks and, if configured, the MQTT broker."""

    def __init__(
        self,
        webhook_urls: list[str],
        webhook_secret: str | None,
        mqtt_url: str | None = None,
        mqtt_topic: str = "visage",
    ) -> None:
        self.webhooks = WebhookSender(webhook_urls, webhook_secret)
        self._mqtt_url, self._mqtt_topic = mqtt_url, mqtt_topic
        self._mqtt: Any = None

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        """One message, with the same ``id`` and ``sent_at`` on every channel."""
        message = envelope(kind, payload)
        self.webhooks.send(kind, message)
        if self._mqtt_url:
            if self._mqtt is None:
                from visage.notify.mqtt import MqttPublisher

                self._mqtt = MqttPublisher(self._mqtt_url, self._mqtt_topic)
            self._mqtt.send(kind, message)

    def flush(self, timeout_s: float = 10.0) -> None:
        self.webhooks.flush(timeout_s)

    def close(self) -> None:
        self.flush(5.0)
        self.webhooks.close()
        if self._mqtt is not None:
            self._mqtt.close()
            self._mqtt = None
