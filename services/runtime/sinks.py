"""A nats-py client with a short path for the hot subscriptions of a process.

nats-py hands every message to a subscription as a `Msg` object (headers parsed, a queue,
a task hop) before a callback sees it: about 13 µs a message here, as much as the work
the callback does. A *sink* registered for a subscription's sid gets the raw frame
(subject, reply, payload, raw header bytes) synchronously on the read loop instead, and
says whether it took it; what it declines takes nats-py's normal path. Relay acks and the
projector's deliveries arrive this way.

The same client can space its socket writes (`flush_interval`): nats-py writes whatever
is pending each time its flusher wakes, which under load means one write syscall, and a
wake-up of nats-server, per event-loop turn. Waiting until `flush_interval` after the
previous write (never when the connection was idle) lets one write carry the replies and
events of many commands: fewer syscalls and context switches on a machine where they are
what the CPU spends most on (measured in docs/performance.md). Before the loop blocks in a
commit, what is queued goes out if its slot has come (`write_if_due`).

The hooks are nats-py's parser (`_ps`, see `wire.FrameParser`), `_process_msg`,
`_flusher` and `_send_ping` (nats-py is pinned below 3);
`HOOK_FITS` checks them, and with a plain client (no `sinks`) every user of this works
the same, only slower.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Callable

from nats import errors
from nats.aio.client import PING_PROTO, Client

from services.runtime.wire import FrameParser

# (subject, reply, data, raw headers or None) -> True when the sink took the message
Sink = Callable[[bytes, bytes, bytes, "bytes | None"], bool]


class SinkClient(Client):
    """nats-py's client, with `sinks` taking the messages of registered subscriptions."""

    def __init__(self, flush_interval: float = 0.0) -> None:
        super().__init__()
        self.sinks: dict[int, Sink] = {}
        self.flush_interval = flush_interval
        self._last_flush = 0.0
        self._ps = FrameParser(self)

    async def publish_frames(self, frames: bytes, messages: int = 1, payload_bytes: int = 0) -> None:
        """Queue ready-made PUB/HPUB frames (`wire.hpub`), as `publish` queues its own (at once
        when connected, else the way nats-py buffers while reconnecting)."""
        if self.queue_frames(frames, messages, payload_bytes):
            return
        if self.is_closed:
            raise errors.ConnectionClosedError
        if self.is_draining_pubs:
            raise errors.ConnectionDrainingError
        if not self.is_connected and (
                self._max_pending_size <= 0 or len(frames) + self._pending_data_size > self._max_pending_size):
            raise errors.OutboundBufferLimitError
        self.stats["out_msgs"] += messages
        self.stats["out_bytes"] += payload_bytes
        await self._send_command(frames)
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    def queue_frames(self, frames: bytes, messages: int = 1, payload_bytes: int = 0) -> bool:
        """Queue ready-made frames now, without awaiting (they go out ahead of anything queued
        later); False, with nothing queued, when the connection cannot take them at once."""
        if (not self.is_connected or self.is_draining_pubs or self._flush_queue is None
                or self._flusher_task is None or self._flusher_task.done()
                or (self._max_pending_size > 0 and len(frames) + self._pending_data_size > self._max_pending_size)):
            return False
        self.stats["out_msgs"] += messages
        self.stats["out_bytes"] += payload_bytes
        self._pending.append(frames)
        self._pending_data_size += len(frames)
        if self._flush_queue.empty():
            self._flush_queue.put_nowait(asyncio.get_running_loop().create_future())
        return True

    async def _send_ping(self, future: asyncio.Future | None = None) -> None:
        """PING in line with what is pending: nats-py writes it to the socket at once, ahead of
        a SUB still waiting for the flusher, so `flush()` could return before the server had
        the subscription (another connection's messages were then missed: seen as lost
        messages in a test under CPU load)."""
        if future is None:
            future = asyncio.get_running_loop().create_future()
        self._pongs.append(future)
        await self._send_command(PING_PROTO)
        await self._flush_pending()

    def write_if_due(self) -> None:
        """Write what is pending now if the interval since the last write has passed: called
        before the event loop blocks (a commit's fsync), so the replies and events already
        queued do not wait behind it (half the replies did, 2-3 ms more, measured)."""
        if not self.flush_interval or not self._pending_data_size or not self.is_connected:
            return
        now = asyncio.get_running_loop().time()
        if now < self._last_flush + self.flush_interval:
            return
        try:
            self._hand_pending_to_transport()
        except (OSError, RuntimeError, AttributeError):
            return  # still pending: the flusher writes it, or reports the error, as usual
        self._last_flush = now

    def _hand_pending_to_transport(self) -> None:
        self._transport.writelines(self._pending[:])
        self._pending = []
        self._pending_data_size = 0

    async def _flusher(self) -> None:  # noqa: D401 - nats-py's flusher, at most one write per interval
        if not self.flush_interval:
            return await super()._flusher()
        while self.is_connected and not self.is_connecting:
            waiting = [await self._flush_queue.get()]
            try:
                loop = asyncio.get_running_loop()
                delay = self._last_flush + self.flush_interval - loop.time()
                # at least one more loop turn: the tasks woken with this one (the commands
                # whose events just went into the buffer) queue their replies first, and one
                # write carries both; without it the replies waited for the next slot
                await asyncio.sleep(delay if delay > 0 else 0)
                while not self._flush_queue.empty():
                    waiting.append(self._flush_queue.get_nowait())
                if self._pending_data_size > 0:
                    self._hand_pending_to_transport()
                    await self._transport.drain()
                self._last_flush = loop.time()
            except OSError as error:
                await self._error_cb(error)
                await self._process_op_err(error)
                break
            except (asyncio.CancelledError, RuntimeError, AttributeError):
                break
            finally:
                for future in waiting:
                    if not future.done():
                        future.set_result(None)


HOOK_FITS = list(inspect.signature(Client._process_msg).parameters) == [
    "self", "sid", "subject", "reply", "data", "headers"] and all(
    hasattr(Client(), name) for name in ("_flusher", "_flush_queue", "_pending", "_pending_data_size", "_transport",
                                         "_ps", "_send_command", "_flush_pending", "_max_pending_size",
                                         "_send_ping", "_pongs", "_flusher_task"))


def new_client(flush_interval: float = 0.0) -> Client:
    """A SinkClient when this nats-py has the hooks, else nats-py's own client."""
    return SinkClient(flush_interval) if HOOK_FITS else Client()


async def subscribe(nc: Client, subject: str, cb, sink: Sink):
    """A subscription whose messages go to `sink` where `nc` can, else to `cb`."""
    subscription = await nc.subscribe(subject, cb=cb)
    register(nc, subscription, sink)
    return subscription


async def unsubscribe(nc: Client, subscription) -> None:
    unregister(nc, subscription)
    await subscription.unsubscribe()


def register(nc: Client, subscription, sink: Sink) -> bool:
    """Route `subscription`'s messages to `sink` when `nc` can; False when it cannot."""
    sinks = getattr(nc, "sinks", None)
    if sinks is None:
        return False
    sinks[subscription._id] = sink
    return True


def unregister(nc: Client, subscription) -> None:
    getattr(nc, "sinks", {}).pop(subscription._id, None)
