"""The event log as the simulated clients see it: a live subscription, and the stream read back.

`LiveFeed` subscribes (core NATS) to `<prefix>.evt.>` before the first command, keeps
every event of the run's calls (`Seen`), counts them per second for the progress line,
and lets a client wait for a callback addressed to it (`wait`, `first`). `read_stream`
reads the stream back from the sequence the run started at with an ordered consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from typing import Callable

import msgspec
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy

from ringlog.simulation.checker import Seen
from schemas.subjects import STREAM_NAME, Subjects


class Head(msgspec.Struct):
    """The envelope fields the simulation needs (the rest of the event is not decoded)."""

    type: str
    eventID: str
    callID: str
    recipient: str


_decode = msgspec.json.Decoder(Head).decode
Key = tuple[str, str, str]  # (callID, callback, recipient)


class LiveFeed:
    def __init__(self, nc: NatsClient, subjects: Subjects, is_ours: Callable[[str], bool]):
        self.nc = nc
        self.subjects = subjects
        self.is_ours = is_ours
        self.seen: list[Seen] = []
        self.arrived: set[Key] = set()
        self.waiting: dict[Key, list[asyncio.Future]] = defaultdict(list)
        self.recent: deque[float] = deque()  # arrival times within the last second
        self.undecodable = 0
        self.subscription = None

    async def start(self) -> None:
        self.subscription = await self.nc.subscribe(self.subjects.events_all, cb=self._on_message,
                                                    pending_msgs_limit=-1, pending_bytes_limit=-1)
        await self.nc.flush()

    async def stop(self) -> None:
        if self.subscription is not None:
            await self.subscription.unsubscribe()
            self.subscription = None

    async def _on_message(self, message) -> None:
        try:
            head = _decode(message.data)
        except msgspec.DecodeError:
            self.undecodable += 1
            return
        if not self.is_ours(head.callID):
            return
        self.seen.append(Seen(head.eventID, head.type, head.callID))
        self.recent.append(time.monotonic())
        key = (head.callID, head.type, head.recipient)
        self.arrived.add(key)
        for future in self.waiting.pop(key, ()):
            if not future.done():
                future.set_result(key)

    def per_second(self) -> float:
        cutoff = time.monotonic() - 1.0
        while self.recent and self.recent[0] < cutoff:
            self.recent.popleft()
        return float(len(self.recent))

    async def wait(self, call_id: str, callback: str, recipient: str, within: float) -> bool:
        """True once `callback` of the call has reached `recipient` (at once if it already has)."""
        return await self.first(call_id, [(callback, recipient)], within) is not None

    async def first(self, call_id: str, wanted: list[tuple[str, str]], within: float) -> int | None:
        """Index of the first of the (callback, recipient) pairs to arrive; None if none does in time."""
        keys = [(call_id, callback, recipient) for callback, recipient in wanted]
        for index, key in enumerate(keys):
            if key in self.arrived:
                return index
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in keys]
        for key, future in zip(keys, futures):
            self.waiting[key].append(future)
        try:
            done, _ = await asyncio.wait(futures, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for key, future in zip(keys, futures):
                pending = self.waiting.get(key)
                if pending and future in pending:
                    pending.remove(future)
                    if not pending:
                        del self.waiting[key]
        if not done:
            return None
        arrived = next(iter(done)).result()
        return keys.index(arrived)


async def stream_position(nc: NatsClient) -> int:
    """The stream's last sequence now; raises RuntimeError when there is no event log."""
    try:
        info = await nc.jetstream().stream_info(STREAM_NAME)
    except Exception as error:
        raise RuntimeError(f"no stream {STREAM_NAME} on this NATS ({error.__class__.__name__}): is ringlog running?") from None
    return info.state.last_seq


async def read_stream(nc: NatsClient, subjects: Subjects, after: int, is_ours: Callable[[str], bool],
                      timeout: float = 60.0) -> list[Seen]:
    """Every event of the run's calls on the stream after sequence `after`, in log order."""
    js = nc.jetstream()
    last = (await js.stream_info(STREAM_NAME)).state.last_seq
    if last <= after:
        return []
    found: list[Seen] = []
    reached = asyncio.Event()

    async def collect(message) -> None:
        try:
            head = _decode(message.data)
            if is_ours(head.callID):
                found.append(Seen(head.eventID, head.type, head.callID))
        except msgspec.DecodeError:
            pass  # not an event of this format: not one of the run's
        if message.metadata.sequence.stream >= last:
            reached.set()

    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
    subscription = await js.subscribe(subjects.events_all, cb=collect, ordered_consumer=True, config=config,
                                      pending_msgs_limit=-1, pending_bytes_limit=-1)
    try:
        await asyncio.wait_for(reached.wait(), timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"reading the stream back did not reach sequence {last} within {timeout:g}s") from None
    finally:
        await subscription.unsubscribe()
    return found
