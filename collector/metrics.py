"""Every Prometheus metric the collector exports, in one place, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # ingestion
        self.requests = Counter(
            "collector_http_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "collector_http_request_seconds", "Time to answer a request", ["route"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.events_received = Counter(
            "collector_events_received", "Events accepted by validation", ["source"], registry=r
        )
        self.events_rejected = Counter(
            "collector_events_rejected", "Events refused, by reason", ["source", "reason"], registry=r
        )
        # source filters (collector/filters): tracking plans
        self.events_blocked = Counter(
            "collector_events_blocked", "Events a tracking plan blocked (answered 200, not stored), by reason",
            ["source", "reason"], registry=r,
        )
        self.events_violations = Counter(
            "collector_events_violations", "Tracking plan violations found, by type, whatever was done about them",
            ["source", "type"], registry=r,
        )
        # the log
        self.events_committed = Counter(
            "collector_events_committed", "Events committed to the durable log", ["source"], registry=r
        )
        self.events_deduplicated = Counter(
            "collector_events_deduplicated", "Events dropped as repeats of a messageId", ["source"], registry=r
        )
        self.dedup_ids = Gauge(
            "collector_dedup_ids",
            "messageIds held for dedup within storage.dedup_window (about 40 bytes of memory each)",
            registry=r,
        )
        self.dedup_window_seconds = Gauge(
            "collector_dedup_window_seconds",
            "The dedup window in force: storage.dedup_window, or less once storage.dedup_max_ids is reached",
            registry=r,
        )
        self.commit_seconds = Histogram(
            "collector_commit_seconds", "Time of one group commit", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.storage_bytes = Gauge("collector_storage_bytes", "Size of the database and its WAL", registry=r)
        self.storage_free_bytes = Gauge(
            "collector_storage_free_bytes", "Free space on the storage filesystem", registry=r
        )
        self.storage_accepting = Gauge(
            "collector_storage_accepting", "1 while storage takes events, 0 while ingestion answers 503", registry=r
        )
        # delivery
        self.queue_depth = Gauge(
            "collector_destination_queue_depth", "Log positions not yet delivered", ["destination"], registry=r
        )
        self.lag_seconds = Gauge(
            "collector_destination_lag_seconds", "Age of the oldest event not yet delivered", ["destination"],
            registry=r,
        )
        self.deliveries = Counter(
            "collector_deliveries",
            "Batches sent, by outcome (ok, retry, reject; skip: nothing to send; mixed: answered event by event)",
            ["destination", "outcome"], registry=r,
        )
        self.delivered_events = Counter(
            "collector_delivered_events", "Events delivered", ["destination"], registry=r
        )
        self.skipped_events = Counter(
            "collector_skipped_events", "Events not for this destination (source, consent, integrations)",
            ["destination"], registry=r,
        )
        self.filtered_events = Counter(
            "collector_destination_filtered", "Events a destination filter dropped (drop or sample)",
            ["destination"], registry=r,
        )
        self.unmatched_events = Counter(
            "collector_destination_unmatched",
            "Events no enabled mapping (trigger) of an action destination took; passed, not sent",
            ["destination"], registry=r,
        )
        self.retries = Counter("collector_delivery_retries", "Batches retried", ["destination"], registry=r)
        self.dead_lettered = Counter(
            "collector_dead_lettered_events", "Events given up on", ["destination"], registry=r
        )
        self.delivery_seconds = Histogram(
            "collector_delivery_seconds", "Time of one send to a destination", ["destination"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
