"""Delivery of events to other systems (webhooks, MQTT)."""
