"""`ringlog bench flows`: whole calls through the three services, as real clients drive them.

One flow: invite -> received -> accept -> both join -> a device report each -> the
caller hangs up (the callee gets remoteHangUp): 8 commands, 20 events. The services run
as child processes (`ringlog serve`, SQLite with fsync on commit) on an embedded
nats-server. Phase 1 runs flows closed-loop at a concurrency for a duration: the most
flows per second. Phase 2 runs flows open-loop at half that rate (or `latency_rate`):
latency at half load.
Afterwards the log is read back: every eventID the services answered must be on the
stream exactly once. During phase 2 a probe times the disk's own fsyncs (ringlog.bench.disk):
every answer waits for one, so a stalling disk shows in the latency whatever the code does.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nats

from ringlog.bench.common import CpuMeter, percentile
from ringlog.bench.disk import FsyncProbe, summarize as summarize_fsyncs
from ringlog.client import Client
from ringlog.up import Supervisor
from services.runtime import loop, sinks
from services.runtime.auth import issue_token
from services.runtime.bus import connect
from services.runtime.sinks import new_client
from services.runtime.config import Settings

EVENTS_PER_FLOW = 20
PROCESSES = ["invitation", "room", "device"]


@dataclass
class Measured:
    command_latencies: list[float] = field(default_factory=list)
    latencies_by_command: dict[str, list[float]] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)  # commandID -> when it was sent
    first_event_at: dict[str, float] = field(default_factory=dict)  # commandID -> first event seen
    answered_event_ids: list[str] = field(default_factory=list)
    flows_done: int = 0
    failures: Counter = field(default_factory=Counter)

    def e2e_latencies(self) -> list[float]:
        return [self.first_event_at[c] - sent for c, sent in self.sent_at.items() if c in self.first_event_at]


class FlowDriver:
    def __init__(self, client: Client, secret: str, measured: Measured):
        self.client = client
        self.secret = secret
        self.measured = measured
        self.tokens: dict[str, str] = {}
        self.ids = itertools.count()

    def token(self, user_id: str) -> str:
        if user_id not in self.tokens:
            self.tokens[user_id] = issue_token(self.secret, user_id)
        return self.tokens[user_id]

    async def command(self, service: str, verb: str, user: str, payload: dict) -> dict:
        command_id = f"bench-{next(self.ids)}"
        started = time.perf_counter()
        self.measured.sent_at[command_id] = started
        reply = await self.client.command(service, verb, {"commandID": command_id, **payload}, self.token(user))
        latency = time.perf_counter() - started
        self.measured.command_latencies.append(latency)
        self.measured.latencies_by_command.setdefault(f"{service}.{verb}", []).append(latency)
        self.measured.answered_event_ids += reply.get("eventIDs", [])
        return reply

    async def flow(self, number: int) -> None:
        caller, callee = f"caller{number}", f"callee{number}"
        call_id = f"flow{number}"
        try:
            await self.command("invitation", "send", caller, {
                "callID": call_id, "caller": {"id": caller}, "callees": [{"id": callee}], "callType": "videoCall"})
            await self.command("invitation", "received", callee, {"callID": call_id, "callee": {"id": callee}})
            await self.command("invitation", "accept", callee, {"callID": call_id, "callee": {"id": callee}})
            await self.command("room", "join", caller, {"callID": call_id, "user": {"id": caller}})
            await self.command("room", "join", callee, {"callID": call_id, "user": {"id": callee}})
            await self.command("device", "report", caller, {"callID": call_id, "user": {"id": caller}, "camera": True})
            await self.command("device", "report", callee, {"callID": call_id, "user": {"id": callee}, "microphone": True})
            await self.command("room", "hang_up", caller, {"callID": call_id, "user": {"id": caller}})
            self.measured.flows_done += 1
        except Exception as error:  # counted, reported; a benchmark keeps going
            self.measured.failures[type(error).__name__] += 1


async def closed_loop(driver: FlowDriver, numbers, concurrency: int, duration: float) -> float:
    """Flows back to back from `concurrency` workers; returns flows per second."""
    deadline = time.perf_counter() + duration
    started = time.perf_counter()
    done_before = driver.measured.flows_done

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await driver.flow(next(numbers))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (driver.measured.flows_done - done_before) / (time.perf_counter() - started)


async def open_loop(driver: FlowDriver, numbers, rate: float, duration: float) -> None:
    """Start flows at a fixed rate, whatever the latency (as independent clients do)."""
    interval = 1.0 / rate
    started = time.perf_counter()
    running = []
    count = 0
    while time.perf_counter() - started < duration:
        running.append(asyncio.create_task(driver.flow(next(numbers))))
        count += 1
        delay = started + count * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.gather(*running)


async def read_log_event_ids(url: str) -> Counter:
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(url)
    js = nc.jetstream()
    ids: Counter = Counter()
    done = asyncio.Event()
    total = (await js.stream_info("RINGLOG_EVENTS")).state.messages

    seen = 0

    async def collect(message) -> None:
        nonlocal seen
        ids[message.headers.get("Nats-Msg-Id", "")] += 1
        seen += 1
        if seen >= total:
            done.set()

    subscription = await js.subscribe("ringlog.evt.>", cb=collect, ordered_consumer=True,
                                      deliver_policy=DeliverPolicy.ALL, pending_msgs_limit=-1)
    if total:
        await asyncio.wait_for(done.wait(), 120)
    await subscription.unsubscribe()
    await nc.close()
    return ids


async def run_flows(url: str, secret: str, concurrency: int, duration: float, latency_rate: float | None = None,
                    cpu: CpuMeter | None = None, disk: FsyncProbe | None = None) -> dict:
    # the load generator's own work competes with the services for the same cores: its
    # watcher takes the sink path (no Msg object and task hop per event)
    nc = await connect(url, "ringlog-bench-flows", client=new_client())
    client = Client(nc, timeout=30)
    measured = Measured()
    driver = FlowDriver(client, secret, measured)

    def note_first_event(subject: bytes, reply: bytes, data: bytes, headers) -> bool:
        cause = data.rsplit(b'"causationID":"', 1)[-1].split(b'"', 1)[0].decode()
        measured.first_event_at.setdefault(cause, time.perf_counter())
        return True

    async def on_event(message) -> None:  # without the sink path
        note_first_event(b"", b"", message.data, None)

    watcher = await client.nc.subscribe("ringlog.evt.>", cb=on_event, pending_msgs_limit=-1, pending_bytes_limit=-1)
    sinks.register(client.nc, watcher, note_first_event)
    numbers = itertools.count()
    js = client.nc.jetstream()
    # the services' collector settings (services.runtime.host): with the defaults, full
    # collections of the growing measurements paused this process up to ~35 ms, and every
    # reply that arrived meanwhile was timed that much late
    gc.collect()
    gc.freeze()
    gc.set_threshold(2_000, 10, 100)
    start_seq = (await js.stream_info("RINGLOG_EVENTS")).state.last_seq
    started = time.perf_counter()
    cpu = cpu or CpuMeter({})
    cpu.start()
    max_flows = await closed_loop(driver, numbers, concurrency, duration)
    cpu_at_full_load = cpu.percent()
    events_at_full = (await wait_for_log(js, measured, start_seq)) - start_seq
    full_seconds = time.perf_counter() - started
    full = Measured(command_latencies=measured.command_latencies[:])
    measured.command_latencies.clear()
    measured.latencies_by_command.clear()
    measured.sent_at.clear()
    measured.first_event_at.clear()
    latency_rate = latency_rate or max(1.0, max_flows / 2)
    if disk:
        disk.start()  # the disk's own fsync waits while latency is measured
    cpu.start()
    try:
        await open_loop(driver, numbers, latency_rate, duration)
    finally:
        disk_figures = disk.stop() if disk else summarize_fsyncs([])
    cpu_at_half_load = cpu.percent()
    await wait_for_log(js, measured, start_seq)
    await watcher.unsubscribe()
    await client.close()
    on_log = await read_log_event_ids(url)
    answered = Counter(measured.answered_event_ids)
    lost = sum(1 for event_id in answered if on_log[event_id] == 0)
    duplicated = sum(1 for count in on_log.values() if count > 1)
    e2e = measured.e2e_latencies()
    return {
        "flows_per_s": max_flows,
        "events_per_s": events_at_full / full_seconds,
        "full_load_cmd_p99_ms": percentile(full.command_latencies, 0.99) * 1000,
        "half_load_flows_per_s": latency_rate,
        "cmd_p50_ms": percentile(measured.command_latencies, 0.50) * 1000,
        "cmd_p99_ms": percentile(measured.command_latencies, 0.99) * 1000,
        "e2e_p50_ms": percentile(e2e, 0.50) * 1000,
        "e2e_p99_ms": percentile(e2e, 0.99) * 1000,
        "cmd_p99_ms_by_command": {name: round(percentile(values, 0.99) * 1000, 2)
                                  for name, values in sorted(measured.latencies_by_command.items())},
        "full_load_cpu_percent": cpu_at_full_load,
        "half_load_cpu_percent": cpu_at_half_load,
        "events_answered": len(measured.answered_event_ids),
        "lost": lost,
        "duplicated": duplicated,
        "failed_flows": sum(measured.failures.values()),
        **disk_figures,
    }


async def wait_for_log(js, measured: Measured, start_seq: int, timeout: float = 60.0) -> int:
    """The stream's last sequence once every answered event has been published."""
    deadline = time.perf_counter() + timeout
    expected = start_seq + len(measured.answered_event_ids)
    while True:
        last = (await js.stream_info("RINGLOG_EVENTS")).state.last_seq
        if last >= expected or time.perf_counter() > deadline:
            return last
        await asyncio.sleep(0.05)


def with_services(url: str, data: Path, secret: str) -> Supervisor:
    settings = Settings(nats_url=url, data_dir=data, token_secret=secret)
    supervisor = Supervisor(settings, url, 0, 0, processes=PROCESSES)
    supervisor.start()
    asyncio.run(supervisor.wait_ready(url))
    return supervisor


def measure(url: str, concurrency: int, duration: float, latency_rate: float | None = None,
            nats_pid: int | None = None) -> dict:
    secret = "bench-secret-" + "x" * 32
    with tempfile.TemporaryDirectory(prefix="ringlog-bench-flows-") as folder:
        supervisor = with_services(url, Path(folder), secret)
        try:
            pids = {name: child.pid for name, child in supervisor.children.items()}
            pids.update({"load generator": os.getpid(), **({"nats-server": nats_pid} if nats_pid else {})})
            return loop.run(run_flows(url, secret, concurrency, duration, latency_rate, CpuMeter(pids),
                                      FsyncProbe(Path(folder))))
        finally:
            supervisor.stop()
