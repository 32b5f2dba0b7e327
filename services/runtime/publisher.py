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
    """Publishes batches of (subject, payload, headers) and waits for every ack."""

    def __init__(self, nc: Client):
        self.nc = nc
        self._batches = itertools.count()
        self._current: _Batch | None = None
        self._one_batch_at_a_time = asyncio.Lock()
        self._subscription = None

    async def start(self) -> "StreamPublisher":
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
        async with self._one_batch_at_a_time:
            if self._subscription is None:
                await self.start()
            token = str(next(self._batches))
            batch = self._current = _Batch(token.encode(), len(messages))
            prefix = f"{self._inbox}.{token}."
            try:
                await self._send(messages, prefix)
                try:
                    await asyncio.wait_for(asyncio.shield(batch.done), timeout)
                except asyncio.TimeoutError:
                    raise PublishRefused(f"{batch.waiting} of {len(messages)} messages not acknowledged "
                                         f"within {timeout:.1f}s") from None
            finally:
                self._current = None
        if batch.refusal is not None:
            raise PublishRefused(batch.refusal)

    async def _send(self, messages: Sequence[Message], prefix: str) -> None:
        publish_frames = getattr(self.nc, "publish_frames", None)
        if publish_frames is None:
            for index, (subject, payload, headers) in enumerate(messages):
                if isinstance(headers, bytes):
                    headers = parse_headers(headers)
                await self.nc.publish(subject, payload, reply=prefix + str(index), headers=headers)
            return
        reply = prefix.encode()
        frames = b"".join(
            hpub(subject.encode(), b"%b%d" % (reply, index),
                 headers if isinstance(headers, bytes) else header_block(headers), payload)
            for index, (subject, payload, headers) in enumerate(messages))
        await publish_frames(frames, len(messages), sum(len(payload) for _, payload, _ in messages))

    def _on_frame(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bool:
        batch = self._current
        # <inbox>.<batch>.<index>: acks of an earlier, abandoned batch are dropped
        if batch is not None and subject.rsplit(b".", 2)[-2] == batch.token:
            batch.acknowledge(data, headers)
        return True

    async def _on_message(self, msg) -> None:  # with a plain nats-py client
        raw = None
        if msg.headers and "Status" in msg.headers:
            raw = f"NATS/1.0 {msg.headers['Status']}".encode()
        self._on_frame(msg.subject.encode(), (msg.reply or "").encode(), msg.data, raw)
