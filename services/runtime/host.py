"""Runs one service process: NATS, stream, store, relay, endpoints, metrics, background tasks."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from nats.aio.client import Client
from nats.js import JetStreamContext

from schemas.enums import Source
from schemas.subjects import Subjects
from services.runtime.bus import connect, ensure_stream
from services.runtime.sinks import new_client
from services.runtime.config import Settings
from services.runtime.endpoints import CommandEndpoints, CommandRoute
from services.runtime.event_metrics import CommitObservers
from services.runtime.handling import UnitOfWork
from services.runtime.metrics import ServiceMetrics
from services.runtime.relay import Relay
from services.runtime.relay_position import RelayPosition
from services.runtime.store import EventStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a service's wiring gets to build on."""

    name: str
    settings: Settings
    nc: Client
    js: JetStreamContext
    subjects: Subjects
    store: EventStore
    relay: Relay
    uow: UnitOfWork
    metrics: ServiceMetrics
    metrics_port: int = 0
    # observers of committed events (call metrics); the relay is always woken first
    observers: CommitObservers = field(default_factory=CommitObservers)


@dataclass
class ServiceParts:
    routes: dict[str, CommandRoute]
    tasks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    ready: Callable[[], Awaitable[None]] | None = None


Build = Callable[[Runtime], Awaitable[ServiceParts]]


async def start_runtime(name: str, source: Source, settings: Settings) -> Runtime:
    metrics = ServiceMetrics(name)
    nc = await connect(settings.nats_url, f"ringlog-{name}", on_reconnect=metrics.nats_reconnects.labels(name).inc,
                       client=new_client(settings.flush_interval_ms / 1000))
    js = nc.jetstream()
    subjects = Subjects(settings.prefix)
    await ensure_stream(js, subjects, settings.stream_replicas)
    path = settings.sqlite_path(name)
    store = EventStore(name, path)
    relay = Relay(
        store, nc, subjects, RelayPosition(path, name),
        on_published=lambda callback, count: metrics.events_published.labels(name, callback).inc(count),
        on_error=metrics.relay_errors.labels(name).inc,
    )
    metrics.relay_backlog.labels(name).set_function(relay.backlog)
    observers = CommitObservers(relay.wake)
    # what is queued for NATS goes out before a commit blocks the loop, if its slot has come
    uow = UnitOfWork(store, source, on_commit=observers, on_written=relay.take,
                     before_commit=getattr(nc, "write_if_due", lambda: None))
    port = metrics.serve(settings.metrics_host, settings.metrics_port)
    return Runtime(name, settings, nc, js, subjects, store, relay, uow, metrics, port, observers)


async def run_service(name: str, source: Source, settings: Settings, build: Build,
                      stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop`), then drain the relay and close."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    runtime = await start_runtime(name, source, settings)
    tasks = [asyncio.create_task(runtime.relay.run(), name=f"{name}-relay")]
    try:
        parts = await build(runtime)
        tasks += [asyncio.create_task(task(), name=f"{name}-task") for task in parts.tasks]
        if parts.ready is not None:
            await parts.ready()
        # What start-up built lives for the whole process: keep it out of the collector's
        # scans. Young objects are collected after 2,000 allocations: under load a pause
        # is ~0.3 ms (p99 ~3-9 ms); with 50,000 each pause took 12-25 ms, a few per half
        # minute in every service, and they made the p99 of commands; the default 700/10/10
        # runs full collections of up to 45 ms (docs/performance.md, step 17).
        gc.collect()
        gc.freeze()
        gc.set_threshold(2_000, 10, 100)
        endpoints = CommandEndpoints(name, runtime.subjects, settings.secret(), runtime.metrics)
        runtime.metrics.declare_verbs(parts.routes)
        micro = await endpoints.start(runtime.nc, parts.routes)
        log.info("%s ready (metrics on %s:%d)", name, settings.metrics_host, runtime.metrics_port)
        await stop.wait()
        await micro.stop()
        await endpoints.drain()
        await runtime.uow.flush()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await runtime.relay.drain(timeout=2.0)
        except Exception:
            log.warning("%s stopped with %d events still to publish (published on next start)", name, runtime.relay.backlog())
        await runtime.nc.drain()
        runtime.store.close()
