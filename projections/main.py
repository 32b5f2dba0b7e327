"""The projector process (`ringlog serve projections`): the log in, read models and queries out.

It holds the data folder's projector lock, keeps `projections.sqlite` (WAL) up to date
from a durable pull consumer (`ringlog-projections`, positioned at the file's own
position + 1 on every start), answers `ringlog.query.*`, serves /metrics and swaps in a
rebuilt file when `ringlog projections rebuild` asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

from projections.endpoints import start_endpoints
from projections.feed import DURABLE, PullFeed, connect_feed_client, position_durable
from projections.metrics import ProjectionMetrics, measure_lag
from projections.pipeline import Pipeline
from projections.projector import Message, Projector
from projections.store import FILE_NAME, DataLock, ProjectionStore, install
from schemas.subjects import STREAM_NAME, Subjects
from services.runtime import loop
from services.runtime.bus import ensure_stream
from services.runtime.config import Settings

log = logging.getLogger(__name__)

TAKE = 4000  # most events per transaction
LAG_REFRESH_SECONDS = 1.0


class ProjectionsProcess:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.subjects = Subjects(settings.prefix)
        self.metrics = ProjectionMetrics()
        self.path = Path(settings.data_dir) / FILE_NAME
        self.lock = DataLock(settings.data_dir)
        self.guard = asyncio.Lock()  # a batch and a swap never overlap
        self.feed: PullFeed | None = None
        self.metrics_port = 0

    async def start(self) -> None:
        if not self.lock.try_acquire():
            raise RuntimeError(f"another projector (pid {self.lock.holder()}) uses {self.settings.data_dir}")
        self.nc = await connect_feed_client(self.settings.nats_url, "ringlog-projections", self._reconnected)
        self.js = self.nc.jetstream()
        await ensure_stream(self.js, self.subjects, self.settings.stream_replicas)
        self._open()
        await self._position()
        self.metrics_port = self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        self.micro = await start_endpoints(self)
        log.info("projections ready at sequence %d (metrics on %s:%d)", self.projector.position,
                 self.settings.metrics_host, self.metrics_port)

    def _open(self) -> None:
        self.store = ProjectionStore(self.path)
        self.projector = Projector(self.store)
        self.pipeline = Pipeline(self.projector, on_written=self._acknowledge)
        self.metrics.position.set(self.projector.position)

    def _reconnected(self) -> None:
        self.metrics.nats_reconnects.labels("projections").inc()
        if self.feed is not None:
            self.feed.lost_requests()

    async def _position(self) -> None:
        """(Re)start delivery right after the file's position. Call with nothing in flight."""
        if self.feed is not None:
            await self.feed.stop()
            self.feed = None
        state = (await self.js.stream_info(STREAM_NAME)).state
        if state.last_seq < self.projector.position:
            log.error("the read models are at sequence %d but the log ends at %d: the stream was replaced; "
                      "run `ringlog projections rebuild`", self.projector.position, state.last_seq)
        if state.messages and state.first_seq > self.projector.next_seq:
            log.warning("the log starts at sequence %d: events %d..%d are gone and cannot be projected",
                        state.first_seq, self.projector.next_seq, state.first_seq - 1)
            self.projector.skip_to(state.first_seq)
        await position_durable(self.js, self.subjects.events_all, self.projector.next_seq)
        self.feed = await PullFeed(self.nc, DURABLE, batch=TAKE).start()

    async def _acknowledge(self, message: Message) -> None:
        self.metrics.position.set(self.projector.committed[0])
        await self.feed.ack(message)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            feed = self.feed
            if feed is None:  # a re-positioning failed (NATS away): try again
                async with self.guard:
                    if self.feed is None:
                        await self._recover(stop)
                continue
            messages = await feed.take(TAKE, timeout=0.25)
            async with self.guard:
                if feed is not self.feed:
                    continue  # a swap re-positioned the consumer meanwhile
                try:
                    await self._apply(messages)
                except Exception:
                    log.exception("projection failed at sequence %d; going on from the file's position",
                                  self.projector.next_seq)
                    await self._recover(stop)

    async def _recover(self, stop: asyncio.Event) -> None:
        """Start again from what the file holds, once NATS and the file let us."""
        with contextlib.suppress(Exception):
            await self.pipeline.flush()  # no write in flight while starting again
        while not stop.is_set():
            await asyncio.sleep(1.0)
            try:
                self.projector.reset()
                await self._position()
                return
            except Exception as error:  # noqa: BLE001 - keep trying; queries still answer meanwhile
                log.warning("cannot resume yet: %s", error)

    async def _apply(self, messages: list[Message]) -> None:
        if messages:
            started = time.perf_counter()
            prepared = await self.pipeline.submit(messages)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
            self.metrics.applied.inc(prepared.applied)
            self.metrics.skipped.inc(prepared.handled - prepared.applied)
            if prepared.gap or self.feed.consumer_gone:
                await self.pipeline.flush()
                await self._position()
                return
        if not self.feed.buffered:
            await self.pipeline.flush()  # nothing else waiting: commit and ack now

    async def swap(self, fresh: Path) -> int:
        """Put a rebuilt file in place of the live one and go on from its position."""
        async with self.guard:
            await self.pipeline.close()
            await self.feed.stop()
            self.feed = None
            self.store.close()
            install(fresh, self.path)
            self._open()
            await self._position()
            log.info("swapped in a rebuilt file at sequence %d", self.projector.position)
            return self.projector.position

    async def lag(self) -> dict:
        return await measure_lag(self.js, self.projector.committed[0])

    async def refresh_lag(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                lag = await self.lag()
                self.metrics.lag_events.set(lag["lagEvents"])
                self.metrics.lag_seconds.set(lag["lagSeconds"])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), LAG_REFRESH_SECONDS)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.micro.stop()
        self.metrics.stop()
        try:
            await self.pipeline.close()
        finally:
            if self.feed is not None:
                await self.feed.stop()
            await self.nc.drain()
            self.store.close()
            self.lock.release()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run the projector until `stop` is set."""
    process = ProjectionsProcess(settings)
    await process.start()
    tasks = [asyncio.create_task(process.run(stop), name="projections-apply"),
             asyncio.create_task(process.refresh_lag(stop), name="projections-lag")]
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopped and not task.cancelled() and task.exception() is not None:
                raise task.exception()
    finally:
        stop.set()
        for task in (*tasks, stopped):
            task.cancel()
        await asyncio.gather(*tasks, stopped, return_exceptions=True)
        await process.close()


def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """`ringlog serve projections`: run until SIGINT or SIGTERM."""

    async def main() -> None:
        nonlocal stop
        stop = stop or asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                running.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    loop.run(main())
