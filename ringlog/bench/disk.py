"""How the disk's own fsync behaved while `bench flows` measured latency.

Every answered command waits for its service's fsync, so a disk that stalls puts its
stalls into the command latency whatever the services do: on the project's VM an idle
disk stalled 40-200 ms a dozen times in 20 s (docs/performance.md, "The machine"). The
probe is a child process (no GIL or event loop shared with the load generator) that
writes 4 KiB and fdatasyncs it every `interval` seconds in the benchmark's data folder,
and prints a summary of what it waited when it is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ringlog.bench.common import percentile

STALL_MS = 20.0
BLOCK = 4096


def summarize(waits_ms: list[float]) -> dict:
    """p50/p99/max of the fsync waits, and how many took longer than STALL_MS."""
    if not waits_ms:
        return {"disk_fsyncs": 0, "disk_fsync_p50_ms": None, "disk_fsync_p99_ms": None,
                "disk_fsync_max_ms": None, "disk_fsync_stalls": 0}
    return {"disk_fsyncs": len(waits_ms), "disk_fsync_p50_ms": round(percentile(waits_ms, 0.50), 3),
            "disk_fsync_p99_ms": round(percentile(waits_ms, 0.99), 3), "disk_fsync_max_ms": round(max(waits_ms), 3),
            "disk_fsync_stalls": sum(1 for wait in waits_ms if wait > STALL_MS)}


class FsyncProbe:
    """`start()` the child, `stop()` it and get `summarize()`'s figures."""

    def __init__(self, folder: Path, interval: float = 0.01):
        self.path = Path(folder) / "fsync-probe"
        self.interval = interval
        self._child: subprocess.Popen | None = None

    def start(self) -> "FsyncProbe":
        self._child = subprocess.Popen([sys.executable, "-m", "ringlog.bench.disk", str(self.path), str(self.interval)],
                                       stdout=subprocess.PIPE, text=True)
        return self

    def stop(self) -> dict:
        if self._child is None:
            return summarize([])
        self._child.send_signal(signal.SIGTERM)
        output, _ = self._child.communicate(timeout=30)
        self._child = None
        self.path.unlink(missing_ok=True)
        lines = output.strip().splitlines()
        return json.loads(lines[-1]) if lines else summarize([])  # stopped before it could start


def _write_and_sync_ms(descriptor: int, block: bytes, offset: int) -> float:
    """Write `block` at `offset` and fdatasync it: the milliseconds the sync waited."""
    os.pwrite(descriptor, block, offset)
    started = time.perf_counter()
    os.fdatasync(descriptor)
    return (time.perf_counter() - started) * 1000


def settle(folder: Path, threshold_ms: float = 5.0, quiet_seconds: float = 1.0, timeout: float = 30.0,
           interval: float = 0.01) -> float:
    """Write back what is dirty (`os.sync`), then fdatasync a probe file every `interval`
    until no wait passed `threshold_ms` for `quiet_seconds` (at most `timeout`): a benchmark
    phase then starts on a disk that is done with what the set-up wrote or removed, instead
    of meeting those stalls. Returns the seconds it took."""
    started = time.perf_counter()
    os.sync()
    path = Path(folder) / "settle-probe"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        block = b"x" * BLOCK
        quiet_since = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if _write_and_sync_ms(descriptor, block, 0) > threshold_ms:
                quiet_since = time.perf_counter()
            elif time.perf_counter() - quiet_since >= quiet_seconds:
                break
            time.sleep(interval)
    finally:
        os.close(descriptor)
        path.unlink(missing_ok=True)
    return time.perf_counter() - started


def probe(path: str, interval: float) -> None:
    stopped = False

    def stop(*_) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    waits: list[float] = []
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(descriptor, b"\0" * 16 * BLOCK, 0)  # allocated once: later syncs are data only
        os.fsync(descriptor)
        block = b"x" * BLOCK
        count = 0
        while not stopped:
            waits.append(_write_and_sync_ms(descriptor, block, (count % 16) * BLOCK))
            count += 1
            time.sleep(interval)
    finally:
        os.close(descriptor)
    print(json.dumps(summarize(waits)), flush=True)


if __name__ == "__main__":
    probe(sys.argv[1], float(sys.argv[2]))
