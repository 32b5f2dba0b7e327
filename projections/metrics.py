"""The projector's Prometheus metrics, and projection lag as numbers anyone can read.

Lag is measured against the stream: `events` = the stream's last sequence minus the
last sequence committed to the read models; `seconds` = how long the oldest event not
yet applied has been in the stream (0 when nothing is waiting). Every read model is
written in the same transaction, so they all share one position and one lag.
"""

from __future__ import annotations

import threading
import time

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from schemas.subjects import STREAM_NAME

READ_MODELS = ("calls", "active_calls", "timeline", "history", "missed", "room", "devices")
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class ProjectionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.lag_events = Gauge("ringlog_projection_lag_events",
                                "Events in the log not yet applied to the read models.", registry=r)
        self.lag_seconds = Gauge("ringlog_projection_lag_seconds",
                                 "Age of the oldest event not yet applied (0 when caught up).", registry=r)
        self.position = Gauge("ringlog_projection_position",
                              "Last stream sequence committed to the read models.", registry=r)
        self.applied = Counter("ringlog_projection_events_applied_total",
                               "Events folded into the read models.", registry=r)
        self.skipped = Counter("ringlog_projection_events_skipped_total",
                               "Deliveries skipped: redelivered, duplicate eventID or undecodable.", registry=r)
        self.batch_seconds = Histogram("ringlog_projection_batch_duration_seconds",
                                       "Time to prepare one batch.", buckets=BATCH_BUCKETS, registry=r)
        self.queries = Counter("ringlog_queries_total", "Queries answered, by query and outcome.",
                               ["query", "outcome"], registry=r)
        self.query_latency = Histogram("ringlog_query_duration_seconds", "Time from request to reply.",
                                       ["query"], buckets=QUERY_BUCKETS, registry=r)
        self.nats_reconnects = Counter("ringlog_nats_reconnects_total", "Reconnections to NATS.", ["service"],
                                       registry=r)

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics; port 0 picks a free port. Returns the bound port."""
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        return self._server.server_port

    def stop(self) -> None:
        """Stop serving /metrics (in the background: the server notices within half a second)."""
        server = getattr(self, "_server", None)
        if server is not None:
            def close() -> None:
                server.shutdown()
                server.server_close()

            threading.Thread(target=close, name="metrics-stop", daemon=True).start()


async def measure_lag(js: JetStreamContext, position: int, now: float | None = None) -> dict:
    """Lag of a read-model file whose last committed stream sequence is `position`."""
    state = (await js.stream_info(STREAM_NAME)).state
    waiting = max(0, state.last_seq - position)
    seconds = 0.0
    if waiting:
        try:
            oldest = await js.get_msg(STREAM_NAME, seq=max(position + 1, state.first_seq))
            seconds = max(0.0, (now or time.time()) - oldest.time.timestamp())
        except Exception:  # noqa: BLE001 - the message may be gone; the count still tells
            seconds = 0.0
    return {"position": position, "streamLastSeq": state.last_seq, "lagEvents": waiting,
            "lagSeconds": round(seconds, 3), "readModels": list(READ_MODELS)}
