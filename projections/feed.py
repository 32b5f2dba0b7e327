"""A hand-written pull loop on a JetStream consumer, and where that consumer starts.

nats-py's `fetch()` waits on every message; here a plain subscription on one inbox
collects deliveries in a list, and pull requests keep about one `batch` of messages
requested ahead, so the projector always has the next batch waiting when it commits.
The consumer acks with AckAll: one ack after a commit covers the whole batch.

Deliveries to a feed's inbox go straight into its list through a sink
(`services.runtime.sinks`): they skip nats-py's per-message work (header parsing, a Msg
object, a queue and a task hop per message), which costs as much as decoding and folding
the event. Status messages take the normal path, and with a plain client the feed works
the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError, NotFoundError

from projections.projector import Message
from services.runtime import sinks
from schemas.subjects import STREAM_NAME

log = logging.getLogger(__name__)

DURABLE = "ringlog-projections"
_new_message = tuple.__new__  # Message(...) without the NamedTuple constructor's overhead


def message_of(msg) -> Message:
    """The stream sequence and time are in the reply subject:
    $JS.ACK[.<domain>.<account hash>].<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]"""
    reply = msg.reply
    tokens = reply.split(".")
    base = 2 if len(tokens) == 9 else 4
    return _new_message(Message, (int(tokens[base + 3]), int(tokens[base + 5]), msg.subject, msg.data, reply))


async def connect_feed_client(url: str, name: str, on_reconnect=None) -> Client:
    """Like services.runtime.bus.connect (whose client gives feeds their short path)."""
    from services.runtime.bus import connect

    return await connect(url, name, on_reconnect)


async def position_durable(js: JetStreamContext, filter_subject: str, start_seq: int,
                           name: str = DURABLE) -> None:
    """Make the durable consumer deliver from `start_seq` (the read models' position + 1).

    An existing consumer is kept (its settings updated with add_consumer) when it has
    delivered exactly up to the position; otherwise it is re-created from `start_seq`,
    so the read models, not the consumer, decide where the projector resumes.
    """
    config = ConsumerConfig(
        durable_name=name, description="ringlog projections (position kept in projections.sqlite)",
        ack_policy=AckPolicy.ALL, ack_wait=30.0, max_ack_pending=20_000, max_waiting=64,
        filter_subject=filter_subject, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq,
    )
    try:
        info = await js.consumer_info(STREAM_NAME, name)
    except NotFoundError:
        info = None
    if info is not None and info.delivered.stream_seq == start_seq - 1:
        kept = info.config
        try:
            await js.add_consumer(STREAM_NAME, config.evolve(deliver_policy=kept.deliver_policy,
                                                            opt_start_seq=kept.opt_start_seq,
                                                            opt_start_time=kept.opt_start_time))
            return
        except JetStreamError as error:
            log.info("durable consumer %s cannot be updated (%s); re-creating it", name, error)
    if info is not None:
        await js.delete_consumer(STREAM_NAME, name)
    await js.add_consumer(STREAM_NAME, config)


async def ephemeral(js: JetStreamContext, name: str, filter_subject: str, *, start_seq: int | None = None,
                    start_time=None) -> int:
    """An ack-less consumer for a one-off read (rebuild, replay); returns how many messages it will deliver."""
    policy = DeliverPolicy.ALL
    if start_seq is not None and start_seq > 1:
        policy = DeliverPolicy.BY_START_SEQUENCE
    elif start_time is not None:
        policy = DeliverPolicy.BY_START_TIME
    config = ConsumerConfig(name=name, ack_policy=AckPolicy.NONE, filter_subject=filter_subject,
                            deliver_policy=policy, inactive_threshold=30.0, mem_storage=True,
                            opt_start_seq=start_seq if policy is DeliverPolicy.BY_START_SEQUENCE else None,
                            opt_start_time=start_time if policy is DeliverPolicy.BY_START_TIME else None)
    info = await js.add_consumer(STREAM_NAME, config)
    return info.num_pending


class PullFeed:
    """Deliveries of one pull consumer, taken in batches."""

    def __init__(self, nc: Client, consumer: str, batch: int = 1000, expires: float = 5.0):
        self.nc, self.consumer, self.batch, self.expires = nc, consumer, batch, expires
        self.consumer_gone = False
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{STREAM_NAME}.{consumer}"
        self._request = json.dumps({"batch": batch, "expires": int(expires * 1e9)}).encode()
        self._buffer: list = []
        self._ready = asyncio.Event()
        self._credit = 0  # messages asked for and not yet taken (in flight or buffered), less expired ones
        self._heard = time.monotonic()
        self._subscription = None

    async def start(self) -> "PullFeed":
        self._inbox = self.nc.new_inbox()
        self._subscription = await sinks.subscribe(self.nc, self._inbox, self._on_message, self._deliver)
        await self._top_up()
        return self

    async def stop(self) -> None:
        if self._subscription is not None:
            await sinks.unsubscribe(self.nc, self._subscription)
            self._subscription = None

    @property
    def buffered(self) -> int:
        """Messages delivered and not yet taken."""
        return len(self._buffer)

    def lost_requests(self) -> None:
        """After a reconnect, pull requests may be gone: ask again."""
        self._credit = len(self._buffer)

    def _deliver(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bool:
        """A stream message, on the short path of `sinks` (anything else takes the normal path)."""
        if not reply.startswith(b"$JS.ACK.") or (headers and headers[8:9] == b" "):
            return False
        reply_text = reply.decode()
        tokens = reply_text.split(".")
        base = 2 if len(tokens) == 9 else 4
        self._buffer.append(_new_message(Message, (int(tokens[base + 3]), int(tokens[base + 5]), subject.decode(),
                                                   data, reply_text)))
        self._ready.set()
        return True

    async def _on_message(self, msg) -> None:
        self._heard = time.monotonic()
        if msg.reply:
            self._buffer.append(message_of(msg))
            self._ready.set()
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status in ("404", "408", "409"):  # the request ended (expired, or refused)
            pending = headers.get("Nats-Pending-Messages")
            remaining = self._credit - int(pending) if pending else 0
            self._credit = max(len(self._buffer), remaining)
            if status == "409" and "Deleted" in headers.get("Description", ""):
                self.consumer_gone = True
            self._ready.set()

    async def _top_up(self) -> None:
        if time.monotonic() - self._heard > self.expires + 2.0:
            self._credit = len(self._buffer)  # nothing heard, not even an expiry: the requests were lost
            self._heard = time.monotonic()
        if self._credit < self.batch:
            self._credit += self.batch
            await self.nc.publish(self._next, self._request, reply=self._inbox)

    async def take(self, limit: int, timeout: float) -> list[Message]:
        """Up to `limit` messages in delivery order; waits at most `timeout` for the first."""
        await self._top_up()
        if not self._buffer:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        taken = self._buffer[:limit]
        del self._buffer[:limit]
        if taken:
            self._credit = max(0, self._credit - len(taken))
            self._heard = time.monotonic()
        await self._top_up()
        return taken

    async def ack(self, message: Message) -> None:
        """AckAll: acknowledges `message` and every message delivered before it."""
        await self.nc.publish(message.reply, b"+ACK")
