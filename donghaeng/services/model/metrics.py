"""Prometheus metrics of the model service (no user names in labels: privacy and cardinality)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, float("inf"))
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5, 10, 30, float("inf"))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("donghaeng_model_requests", "Requests answered, by endpoint and HTTP status",
                                ["model", "endpoint", "status"], registry=r)
        self.rejected = Counter("donghaeng_model_rejected", "Requests refused by the fairness limits",
                                ["reason"], registry=r)
        self.tokens = Counter("donghaeng_model_tokens", "Tokens processed", ["model", "kind"], registry=r)
        self.latency = Histogram("donghaeng_model_request_seconds", "Whole request time, queueing included",
                                 ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("donghaeng_model_time_to_first_token_seconds",
                              "Time from request to the first streamed token", ["model"],
                              buckets=TTFT_BUCKETS, registry=r)
        self.queue_wait = Histogram("donghaeng_model_queue_wait_seconds", "Time spent waiting for a slot",
                                    ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_length = Gauge("donghaeng_model_queue_length", "Requests waiting for a slot", ["model"],
                                  registry=r)
        self.active = Gauge("donghaeng_model_active_requests", "Requests using an engine slot", ["model"],
                            registry=r)
        self.engine_up = Gauge("donghaeng_model_engine_up", "1 when the model's engine answers", ["model"],
                               registry=r)
        self.engine_restarts = Counter("donghaeng_model_engine_restarts", "Engine processes restarted",
                                       ["model"], registry=r)
        self.disconnects = Counter("donghaeng_model_client_disconnects",
                                   "Requests whose client went away before the answer ended", ["model"],
                                   registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
