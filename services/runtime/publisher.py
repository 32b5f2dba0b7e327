"""Pipelined JetStream publishes, acknowledged in batches.

`js.publish_async` costs about 25 µs of client CPU a message here (a future, a token, a
`wait_for` and a JSON parse per ack): as much as the rest of an event's path through a
service. `StreamPublisher` publishes a batch as plain publishes (ready-made frames where the
client takes them, see `wire`), each with its own reply subject under one inbox, and counts the stream's acks as they arrive on a sink
(see `sinks`): about 7 µs a message. A batch succeeds when every message is acknowledged
(a duplicate is an acknowledgement); any refusal, or silence past the timeout, fails the
whole batch, and the caller publishes it again (each message carries `Nats-Msg-Id`, so
the stream keeps one copy).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Sequence

import msgspec
from nats.aio.client import Client

from services.runtime import sinks
from services.runtime.wire import header_block, hpub, parse_headers


# (subject, payload, headers: a dict, or a ready `wire.header_block`)
Message = tuple[str, bytes, "dict[str, str] | bytes"]


class PublishRefused(Exception):
    """The stream refused a message, or did not answer in time."""


class _AckError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Ack(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: _AckError | None = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


class _Batch:
    def __init__(self, token: bytes, size: int):
        self.token = token  # the reply-subject part that marks this batch's acks
        self.size = size
        self.waiting = size
        self.refusal: str | None = None
        self.done = asyncio.get_running_loop().create_future()

    def acknowledge(self, data: bytes, headers: bytes | None) -> None:
        if headers and headers[8:9] == b" ":  # a status message, e.g. 503 no responders
            self.refusal = self.refusal or f"status {headers[9:12].decode(errors='replace')} from the server"
        elif not (data.startswith(b'{"stream":') and b'"error"' not in data):  # not a plain ack: read it
            try:
                ack = _decode_ack(data)
                if ack.error is not None:
                    self.refusal = self.refusal or f"{ack.error.description} (code {ack.error.err_code})"
            except msgspec.DecodeError:
                self.refusal = self.refusal or f"unreadable ack {data[:80]!r}"
        self.waiting -= 1
        if self.waiting == 0 and not self.done.done():
            self.done.set_result(None)


class StreamPublisher:
    """Publishes batches of (subject, payload, headers) and waits for every ack.

    `publish` sends a batch and waits for it. `send_now` queues a batch on the connection
    at once, without awaiting anything (so its frames go out ahead of anything queued
    after it), and `wait` waits for it later: several batches can be in flight.
    """

    def __init__(self, nc: Client):
        self.nc = nc
        self._tokens = itertools.count()
        self._in_flight: dict[bytes, _Batch] = {}
        self._subscription = None
        self._queue_frames = getattr(nc, "queue_frames", None)

    async def start(self) -> "StreamPublisher":
        if self._subscription is None:
            self._inbox = self.nc.new_inbox()
            self._subscription = await sinks.subscribe(self.nc, self._inbox + ".*.*", self._on_message, self._on_frame)
        return self

    async def stop(self) -> None:
        if self._subscription is not None:
            await sinks.unsubscribe(self.nc, self._subscription)
            self._subscription = None

    async def publish(self, messages: Sequence[Message], timeout: float) -> None:
        """Publish every message; return once all are stored (or were already), else raise."""
        if not messages:
            return
        await self.start()
        batch = self._new_batch(len(messages))
        try:
            await self._send(messages, batch)
        except BaseException:
            self._in_flight.pop(batch.token, None)
            raise
        await self.wait(batch, timeout)

    def send_now(self, messages: Sequence[Message]) -> "_Batch | None":
        """Queue a batch on the connection without awaiting; None when it cannot go now (a plain
        client, not started, not connected, or the outbound buffer full): use `publish`."""
        if not messages or self._queue_frames is None or self._subscription is None:
            return None
        batch = self._new_batch(len(messages))
        if not self._queue_frames(self._frames(messages, batch), len(messages),
                                  sum(len(payload) for _, payload, _ in messages)):
            self._in_flight.pop(batch.token, None)
            return None
        return batch

    async def wait(self, batch: "_Batch", timeout: float) -> None:
        """Until every message of `batch` is acknowledged; PublishRefused on a refusal or silence."""
        try:
            await asyncio.wait_for(asyncio.shield(batch.done), timeout)
        except asyncio.TimeoutError:
            raise PublishRefused(f"{batch.waiting} of {batch.size} messages not acknowledged "
                                 f"within {timeout:.1f}s") from None
        finally:
            self._in_flight.pop(batch.token, None)  # late acks of an abandoned batch are dropped
        if batch.refusal is not None:
            raise PublishRefused(batch.refusal)

    def abandon(self, batch: "_Batch") -> None:
        """Stop waiting for a batch sent with `send_now` (its late acks are dropped)."""
        self._in_flight.pop(batch.token, None)

    def _new_batch(self, size: int) -> "_Batch":
        batch = _Batch(b"%d" % next(self._tokens), size)
        self._in_flight[batch.token] = batch
        return batch

    def _frames(self, messages: Sequence[Message], batch: "_Batch") -> bytes:
        reply = b"%b.%b." % (self._inbox.encode(), batch.token)
        return b"".join(
            hpub(subject.encode(), b"%b%d" % (reply, index),
                 headers if isinstance(headers, bytes) else header_block(headers), payload)
            for index, (subject, payload, headers) in enumerate(messages))

    async def _send(self, messages: Sequence[Message], batch: "_Batch") -> None:
        publish_frames = getattr(self.nc, "publish_frames", None)
        if publish_frames is None:
            prefix = f"{self._inbox}.{batch.token.decode()}."
            for index, (subject, payload, headers) in enumerate(messages):
                if isinstance(headers, bytes):
                    headers = parse_headers(headers)
                await self.nc.publish(subject, payload, reply=prefix + str(index), headers=headers)
            return
        await publish_frames(self._frames(messages, batch), len(messages), sum(len(payload) for _, payload, _ in messages))

    def _on_frame(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bool:
        # <inbox>.<batch>.<index>: acks of an abandoned batch find no batch and are dropped
        batch = self._in_flight.get(subject.rsplit(b".", 2)[-2])
        if batch is not None:
            batch.acknowledge(data, headers)
        return True

    async def _on_message(self, msg) -> None:  # with a plain nats-py client
        raw = None
        if msg.headers and "Status" in msg.headers:
            raw = f"NATS/1.0 {msg.headers['Status']}".encode()
        self._on_frame(msg.subject.encode(), (msg.reply or "").encode(), msg.data, raw)
