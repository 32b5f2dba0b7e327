"""What the benchmark suites share: a private nats-server, percentiles, printing."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Iterator

from ringlog.natsserver import NatsServer


@contextlib.contextmanager
def private_nats(sync_interval: str | None = None, nice: int = 0) -> Iterator[NatsServer]:
    """An embedded nats-server on a free port with a throw-away store."""
    with tempfile.TemporaryDirectory(prefix="ringlog-bench-") as folder:
        server = NatsServer(Path(folder) / "nats", sync_interval=sync_interval, nice=nice).start()
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


class CpuMeter:
    """CPU time of named processes over a phase, as % of one core (Linux `/proc`; empty elsewhere)."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self._started: dict[str, float] = {}
        self._at = 0.0

    @staticmethod
    def cpu_seconds(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def start(self) -> None:
        self._at = time.monotonic()
        self._started = {name: seconds for name, pid in self.pids.items()
                         if (seconds := self.cpu_seconds(pid)) is not None}

    def percent(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._at
        used = {name: (self.cpu_seconds(self.pids[name]) or before) - before for name, before in self._started.items()}
        return {name: round(100 * seconds / elapsed, 1) for name, seconds in used.items()} if elapsed > 0 else {}


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
