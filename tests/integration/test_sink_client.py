"""SinkClient on a real nats-server: sinks take their subscriptions' frames, writes are spaced."""

import asyncio

import pytest

from services.runtime import sinks
from services.runtime.bus import connect


async def received_at(nc, subject: str, count: int) -> tuple[list[float], asyncio.Event]:
    times: list[float] = []
    done = asyncio.Event()

    async def note(msg) -> None:
        times.append(asyncio.get_running_loop().time())
        if len(times) >= count:
            done.set()

    await nc.subscribe(subject, cb=note)
    await nc.flush()
    return times, done


async def test_after_idle_the_first_write_goes_at_once_and_the_next_waits_for_the_interval(nats_server):
    interval = 0.2
    sender = await connect(nats_server.url, "spaced", client=sinks.SinkClient(flush_interval=interval))
    listener = await connect(nats_server.url, "listener")
    times, done = await received_at(listener, "spaced.x", 3)
    await asyncio.sleep(interval)  # idle
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await sender.publish("spaced.x", b"1")
    await asyncio.sleep(0.01)
    await sender.publish("spaced.x", b"2")
    await sender.publish("spaced.x", b"3")
    await asyncio.wait_for(done.wait(), 5)
    assert times[0] - sent < 0.1  # no wait after an idle connection
    assert times[1] - sent >= interval * 0.9  # the second write waited for the interval...
    assert times[2] - times[1] < 0.05  # ...and carried everything pending
    await asyncio.wait_for(sender.flush(), 2)  # PING/PONG still goes through
    await sender.close()
    await listener.close()


async def test_write_if_due_writes_at_once_only_when_the_interval_has_passed(nats_server):
    interval = 0.3
    sender = await connect(nats_server.url, "spaced", client=sinks.SinkClient(flush_interval=interval))
    await sender.publish("spaced.x", b"0")
    await asyncio.sleep(0.05)  # written: the next write is due `interval` after it
    writes = WriteCalls(sender._transport)
    assert sender.queue_frames(b"PUB spaced.x 1\r\n1\r\n")
    sender.write_if_due()
    assert writes.calls == []  # not due: left to the flusher
    await asyncio.sleep(interval * 1.5)
    assert writes.calls == [b"PUB spaced.x 1\r\n1\r\n"]  # the flusher wrote it at its slot
    await asyncio.sleep(interval * 1.5)
    assert sender.queue_frames(b"PUB spaced.x 1\r\n2\r\n")
    sender.write_if_due()
    assert writes.calls[-1] == b"PUB spaced.x 1\r\n2\r\n"  # due: written before returning
    await sender.close()


class WriteLog:
    """Records, in order, what a client hands its socket."""

    def __init__(self, transport):
        self.written = bytearray()
        write, writelines = transport.write, transport.writelines
        transport.write = lambda data: (self.written.extend(data), write(data))[1]
        transport.writelines = lambda lines: (self.written.extend(b"".join(lines)), writelines(lines))[1]


class WriteCalls:
    """Records each write the client makes to its socket, as one item."""

    def __init__(self, transport):
        self.calls: list[bytes] = []
        writelines = transport.writelines
        transport.writelines = lambda lines: (self.calls.append(b"".join(lines)), writelines(lines))[1]


async def test_frames_queued_by_the_tasks_woken_with_the_flusher_share_its_write(nats_server):
    # the committer queues a group's events and wakes the commands' tasks in the same turn;
    # their replies must go out in the events' write, not wait for the next interval
    sender = await connect(nats_server.url, "spaced", client=sinks.SinkClient(flush_interval=0.2))
    await asyncio.sleep(0.25)  # idle: the next write may go at once
    writes = WriteCalls(sender._transport)
    loop = asyncio.get_running_loop()
    reply_ready = loop.create_future()

    async def command() -> None:
        await reply_ready
        sender.queue_frames(b"PUB spaced.reply 5\r\nreply\r\n")

    task = asyncio.create_task(command())
    await asyncio.sleep(0)  # the command now waits for its answer
    assert sender.queue_frames(b"PUB spaced.event 5\r\nevent\r\n")
    reply_ready.set_result(None)
    await asyncio.sleep(0.05)
    await task
    assert writes.calls == [b"PUB spaced.event 5\r\nevent\r\nPUB spaced.reply 5\r\nreply\r\n"]
    await sender.close()


@pytest.mark.parametrize("client", [sinks.SinkClient, lambda: sinks.SinkClient(flush_interval=0.002)])
async def test_flush_after_subscribe_is_a_barrier(nats_server, client):
    """flush() must not return before the server has what was sent before it: nats-py wrote
    its PING straight to the socket, ahead of a SUB still waiting for the flusher."""
    listener = await connect(nats_server.url, "listener", client=client())
    log = WriteLog(listener._transport)
    sender = await connect(nats_server.url, "sender")
    got: list[bytes] = []

    async def note(msg) -> None:
        got.append(msg.data)

    await listener.subscribe("barrier.x", cb=note)
    await listener.flush()
    assert log.written.index(b"SUB barrier.x") < log.written.index(b"PING")
    await sender.publish("barrier.x", b"first")
    await sender.flush()
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.01)
    assert got == [b"first"]
    await sender.close()
    await listener.close()


async def test_spaced_writes_lose_nothing_and_keep_order(nats_server):
    sender = await connect(nats_server.url, "spaced", client=sinks.SinkClient(flush_interval=0.002))
    listener = await connect(nats_server.url, "listener")
    got: list[bytes] = []
    done = asyncio.Event()

    async def note(msg) -> None:
        got.append(msg.data)
        if len(got) == 2000:
            done.set()

    await listener.subscribe("order.x", cb=note)
    await listener.flush()

    async def burst(start: int) -> None:
        for i in range(start, start + 500):
            await sender.publish("order.x", str(i).encode())
            if i % 50 == 0:
                await asyncio.sleep(0)

    for start in range(0, 2000, 500):
        await burst(start)
    await asyncio.wait_for(done.wait(), 10)
    assert got == [str(i).encode() for i in range(2000)]
    await sender.close()
    await listener.close()


async def test_a_sink_takes_its_frames_and_declined_ones_take_the_normal_path(nats_server):
    nc = await connect(nats_server.url, "sinks", client=sinks.SinkClient())
    taken: list[bytes] = []
    normal: list[bytes] = []
    done = asyncio.Event()

    async def callback(msg) -> None:
        normal.append(msg.data)
        done.set()

    subscription = await nc.subscribe("sunk.>", cb=callback)
    assert sinks.register(nc, subscription, lambda subject, reply, data, headers: data != b"decline" and
                          (taken.append(data) or True))
    await nc.publish("sunk.a", b"take")
    await nc.publish("sunk.a", b"decline")
    await asyncio.wait_for(done.wait(), 5)
    assert taken == [b"take"] and normal == [b"decline"]
    sinks.unregister(nc, subscription)
    done.clear()
    await nc.publish("sunk.a", b"take")
    await asyncio.wait_for(done.wait(), 5)
    assert normal == [b"decline", b"take"]
    await nc.close()
