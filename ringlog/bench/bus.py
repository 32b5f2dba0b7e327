"""`ringlog bench bus`: the raw nats-py JetStream limit for same-size messages.

Publish: pipelined `publish_async` with `Nats-Msg-Id`, as the relay does, futures bounded.
Read: an ordered push consumer over the whole stream, as replay does.
"""

from __future__ import annotations

import asyncio
import time

import nats
from nats.js.api import DeliverPolicy, StorageType, StreamConfig

EVENT_SIZE = 420  # bytes: a typical invitation event on the wire
BENCH_STREAM = "RINGLOG_BENCH_BUS"


async def publish_rate(url: str, count: int, size: int = EVENT_SIZE, window: int = 2000) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=window)
    try:
        await js.add_stream(StreamConfig(name=BENCH_STREAM, subjects=["bench.bus.>"], storage=StorageType.FILE,
                                         duplicate_window=120))
        payload = b"x" * size
        started = time.perf_counter()
        futures = []
        for index in range(count):
            futures.append(await js.publish_async(f"bench.bus.c{index % 100}.u{index % 7}", payload,
                                                  headers={"Nats-Msg-Id": f"m{index}"}))
            if len(futures) >= window:
                await asyncio.wait_for(asyncio.gather(*futures), 30)
                futures.clear()
        await asyncio.wait_for(asyncio.gather(*futures), 30)
        return count / (time.perf_counter() - started)
    finally:
        await nc.close()


async def read_rate(url: str, subject: str = "bench.bus.>", expected: int | None = None) -> float:
    """Messages per second through an ordered push consumer with a callback (the fastest reader)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    done = asyncio.Event()
    received = 0
    target = expected or 0

    async def count(message) -> None:
        nonlocal received
        received += 1
        if received >= target:
            done.set()

    try:
        started = time.perf_counter()
        subscription = await js.subscribe(subject, cb=count, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL,
                                          pending_msgs_limit=-1, pending_bytes_limit=-1)
        if expected is None:
            target = (await subscription.consumer_info()).num_pending
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        await subscription.unsubscribe()
        return received / elapsed
    finally:
        await nc.close()


async def measure(url: str, count: int) -> dict:
    publish = await publish_rate(url, count)
    read = await read_rate(url, expected=count)
    return {"messages": count, "message_bytes": EVENT_SIZE, "bus_publish_per_s": publish, "bus_read_per_s": read}
