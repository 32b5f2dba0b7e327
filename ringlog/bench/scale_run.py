"""One run of `ringlog bench scale` on one prepared folder: start the services, time their
start-up, run a fixed workload of call flows, read each service's memory.

The folder holds `data/` (the three services' stores) and `nats/` (the stream), as
`ringlog.bench.scale.prepare` leaves them; the services start as child processes
(`ringlog.up.Supervisor`) on a nats-server over `nats/`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from pathlib import Path

from ringlog.bench.common import percentile
from ringlog.bench.disk import FsyncProbe

PROCESSES = ["invitation", "room", "device"]
SECRET = "bench-scale-secret-" + "x" * 32


def read_memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024  # kB
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


async def run_flows(url: str, flows: int, rate: float) -> dict:
    """`flows` whole call flows started at `rate` per second, whatever the latency."""
    from ringlog.bench.flows import FlowDriver, Measured, open_loop
    from ringlog.client import Client

    client = await Client.connect(url)
    client.timeout = 30
    measured = Measured()
    try:
        await open_loop(FlowDriver(client, SECRET, measured), itertools.count(), rate, math.inf, limit=flows)
    finally:
        await client.close()
    return {"latencies": measured.command_latencies, "failed_flows": sum(measured.failures.values())}


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def measure_run(folder: Path, flows: int, rate: float, ready_timeout: float = 600.0) -> dict:
    """Start the services over `folder` (data/ and nats/), time start-up, run flows, read memory.

    A service that does not start (or dies) gives {"error": ...} instead of figures."""
    from ringlog.natsserver import NatsServer
    from ringlog.up import Supervisor
    from services.runtime.config import Settings

    server = NatsServer(folder / "nats").start()
    supervisor = None
    try:
        settings = Settings(nats_url=server.url, data_dir=folder / "data", token_secret=SECRET)
        supervisor = Supervisor(settings, server.url, 0, 0, processes=list(PROCESSES))
        started = time.perf_counter()
        supervisor.start()
        try:
            answered = asyncio.run(supervisor.wait_ready(server.url, ready_timeout, poll=0.02))
            ready = {name: at - started for name, at in answered.items()}
        except RuntimeError as error:
            failed = supervisor.failed_child()
            tail = log_tail(folder / "data" / f"{failed}.log") if failed else ""
            return {"error": f"{error} after {time.perf_counter() - started:.1f}s" + (f": {tail}" if tail else "")}
        rss_ready = {name: read_memory_mb(child.pid)[0] for name, child in supervisor.children.items()}
        probe = FsyncProbe(folder).start()  # a disk stall shows in a p99 of 2,000 samples whatever the log holds
        try:
            workload = asyncio.run(run_flows(server.url, flows, rate))
        finally:
            disk = probe.stop()
        failed = supervisor.failed_child()
        if failed:
            return {"error": f"{failed} exited during the workload: {log_tail(folder / 'data' / f'{failed}.log')}"}
        memory = {name: read_memory_mb(child.pid) for name, child in supervisor.children.items()}
        latencies = workload["latencies"]
        return {
            "startup_s": max(ready.values()),
            **{f"startup_s_{name}": ready[name] for name in PROCESSES},
            "cmd_p50_ms": percentile(latencies, 0.50) * 1000,
            "cmd_p99_ms": percentile(latencies, 0.99) * 1000,
            "cmd_max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "disk_fsync_stalls": disk["disk_fsync_stalls"],
            "disk_fsync_max_ms": disk["disk_fsync_max_ms"] or 0.0,
            "commands": len(latencies),
            "failed_flows": workload["failed_flows"],
            "rss_mb": sum(rss for rss, _ in memory.values()),
            **{f"rss_mb_{name}": memory[name][0] for name in PROCESSES},
            "rss_mb_ready": sum(rss_ready.values()),
            "peak_rss_mb": sum(peak for _, peak in memory.values()),
            **{f"peak_rss_mb_{name}": memory[name][1] for name in PROCESSES},
        }
    finally:
        if supervisor is not None:
            supervisor.stop()
        server.stop()
