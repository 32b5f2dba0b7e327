"""Prometheus metrics shared by the service processes (low-cardinality labels only).

Every process has its own registry and its own `/metrics` port. `ServiceMetrics` holds
what every service exposes (commands, relay, NATS); the call figures that only one
service can know are in `services.runtime.call_metrics`, registered on the same registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client import disable_created_metrics

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# `*_created` series double the series count and no dashboard or alert reads them.
disable_created_metrics()


class ServiceMetrics:
    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.service = service
        ProcessCollector(registry=self.registry)  # process_start_time_seconds, memory, CPU, open fds
        self.commands = Counter(
            "ringlog_commands_total", "Commands handled, by service, verb and outcome (ok or the error status).",
            ["service", "verb", "outcome"], registry=self.registry,
        )
        self.command_latency = Histogram(
            "ringlog_command_duration_seconds", "Time from request to reply, by service and verb.",
            ["service", "verb"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.events_published = Counter(
            "ringlog_events_published_total", "Events published to the log by the relay, by callback.",
            ["service", "callback"], registry=self.registry,
        )
        self.relay_backlog = Gauge(
            "ringlog_relay_backlog_events", "Events committed to the store and not yet acknowledged by the stream.",
            ["service"], registry=self.registry,
        )
        self.relay_errors = Counter(
            "ringlog_relay_publish_errors_total", "Failed relay publish attempts (each is retried).",
            ["service"], registry=self.registry,
        )
        self.unexpected_errors = Counter(
            "ringlog_unexpected_errors_total", "Requests answered with 500.",
            ["service"], registry=self.registry,
        )
        self.nats_reconnects = Counter(
            "ringlog_nats_reconnects_total", "Reconnections to NATS.", ["service"], registry=self.registry,
        )
        # Series that exist from the start, at 0, so rate() and alerts see them before the first error.
        for family in (self.relay_errors, self.unexpected_errors, self.nats_reconnects):
            family.labels(service)

    def declare_verbs(self, verbs) -> None:
        """Create each verb's series at 0 before the first command, so rate() counts that one too."""
        for verb in verbs:
            self.commands.labels(self.service, verb, "ok")
            self.command_latency.labels(self.service, verb)

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics; port 0 picks a free port. Returns the bound port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
