"""What the benchmark suites share: a private nats-server, percentiles, printing."""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
from pathlib import Path
from typing import Iterator

from ringlog.natsserver import NatsServer


@contextlib.contextmanager
def private_nats(sync_interval: str | None = None) -> Iterator[NatsServer]:
    """An embedded nats-server on a free port with a throw-away store."""
    with tempfile.TemporaryDirectory(prefix="ringlog-bench-") as folder:
        server = NatsServer(Path(folder) / "nats", sync_interval=sync_interval).start()
        try:
            yield server
        finally:
            server.stop()


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(title: str, figures: dict, as_json: bool) -> None:
    """Human lines first; with --json the last line is one JSON object."""
    print(title)
    for key, value in figures.items():
        shown = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        print(f"  {key:<22} {shown}")
    if as_json:
        print(json.dumps(figures))
