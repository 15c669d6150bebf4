"""Prometheus metrics of one app: requests, latencies, faces processed, matches.
Never names or subject ids."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "visage_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "visage_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.faces = Counter(
            "visage_faces_processed_total", "Faces seen by identify", registry=self.registry
        )
        self.matches = Counter(
            "visage_matches_total", "Faces matched to a consenting subject", registry=self.registry
        )
