"""Fill a data folder and a stream with finished calls, fast, as if the services had run.

`ringlog bench scale` needs a log of 1M events before it starts the services; putting
them through the commands would take many minutes. Instead the calls are decided here,
in-process, by the services' own pure domains (`ringlog.bench.history`), and their
writes go straight into each service's SQLite file with `EventStore.append_group`, one
transaction per service per chunk; the same events are published to the stream by a
second process (`ringlog.bench.preload_publisher`), and each service's relay position is
then set to its store's last position, so no relay re-publishes them. Generation and
store writes run in this process while the publisher runs in the other: the slower of
the two sets the rate (about 20-25k events/s on two cores).

JetStream stamps each message with the time it stores it: the preloaded history is old by
`occurredAt`, but recent by stream time (nothing lets a publisher set that time).
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from ringlog.bench.history import History, Write
from ringlog.bench.preload_publisher import Publisher
from schemas.events import encode_event
from schemas.subjects import STREAM_NAME, Subjects

SERVICES = ("invitation", "room", "device")

@dataclass
class Preloaded:
    calls: int
    events: dict[str, int]  # per service
    records: int
    positions: dict[str, int]  # each store's last position = each relay's position
    published: int
    seconds: float

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    @property
    def events_per_s(self) -> float:
        return self.total_events / self.seconds if self.seconds else 0.0


def group_by_service(writes: Sequence[Write]) -> dict[str, list]:
    """append_group items per service, in decision order."""
    groups: dict[str, list] = {name: [] for name in SERVICES}
    for write in writes:
        groups[write.service].append(([(write.stream, write.events)], write.record))
    return groups


def preload(data_dir: Path, nats_url: str | None, *, calls: int, seed: int = 1, prefix: str = "ringlog",
            calls_per_chunk: int = 2000, progress: Callable[[str], None] | None = None,
            now: datetime | None = None) -> Preloaded:
    """Write `calls` finished calls into the three stores under `data_dir` and (with a URL)
    publish them to the stream; set each relay's position to its store's end."""
    from services.runtime.config import Settings
    from services.runtime.relay_position import RelayPosition
    from services.runtime.store import EventStore

    started = time.perf_counter()
    settings = Settings(data_dir=Path(data_dir), prefix=prefix)
    subjects = Subjects(prefix)
    if nats_url:
        asyncio.run(_ensure_stream(nats_url, subjects))
    history = History(calls, seed=seed, now=now)
    stores = {name: EventStore(name, settings.sqlite_path(name)) for name in SERVICES}
    publisher = Publisher(nats_url) if nats_url else None
    collecting = gc.isenabled()
    gc.disable()  # the chunks hold no cycles; collecting them only costs time (a third of it)
    counts = {name: 0 for name in SERVICES}
    records = 0
    done = 0
    try:
        for writes in history.chunks(calls_per_chunk):
            for name, items in group_by_service(writes).items():
                if items:
                    stores[name].append_group(items)
            batch = [(subjects.event(event), encode_event(event), event.eventID)
                     for write in writes for event in write.events]
            if publisher is not None:
                publisher.send(batch)
            for write in writes:
                counts[write.service] += len(write.events)
            records += len(writes)
            done = min(calls, done + calls_per_chunk)
            if progress is not None:
                total = sum(counts.values())
                progress(f"preload: {done:,}/{calls:,} calls, {total:,} events, "
                         f"{total / (time.perf_counter() - started):,.0f} events/s")
        published = publisher.finish() if publisher is not None else 0
    except BaseException:
        if publisher is not None:
            publisher.kill()
        raise
    finally:
        if collecting:
            gc.enable()
        positions = {}
        for name, store in stores.items():
            positions[name] = store.max_position()
            store.close()
    for name, position in positions.items():
        relay_position = RelayPosition(settings.sqlite_path(name), name)
        relay_position.set(position)
        relay_position.close()
    if nats_url:
        asyncio.run(_wait_for_stream(nats_url, published))
    return Preloaded(calls, counts, records, positions, published, time.perf_counter() - started)


async def _ensure_stream(url: str, subjects: Subjects) -> None:
    import nats

    from services.runtime.bus import ensure_stream

    nc = await nats.connect(url)
    try:
        await ensure_stream(nc.jetstream(), subjects)
    finally:
        await nc.close()


async def _wait_for_stream(url: str, published: int) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        messages = (await nc.jetstream().stream_info(STREAM_NAME)).state.messages
        if messages < published:
            raise RuntimeError(f"the stream holds {messages:,} messages, {published:,} were published")
    finally:
        await nc.close()
