"""An ordered push consumer whose deliveries take the short path of `sinks`.

nats-py's `ordered_consumer` builds a Msg per delivery, parses its headers, queues it, awaits
the callback from a task and parses the reply subject again for `metadata`. Here each
delivery is handled where it arrives, on the client's read loop: its reply subject
($JS.ACK[.<domain>.<account hash>].<stream>.<consumer>.<delivered>.<stream seq>.<consumer
seq>.<time>.<pending>[.<token>]) gives the sequences, and the message goes to `on_message`.

The consumer is ephemeral, ack-less, flow-controlled and sends idle heartbeats. It is
replaced by a new one starting after the last stream sequence delivered when a delivery
is lost (a consumer sequence that is not the next one, or a heartbeat naming another last
one), after a reconnect, and after three heartbeat intervals of silence (the consumer is
gone, e.g. the server restarted). With a plain nats-py client the same logic runs from the
subscription's callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from functools import partial
from typing import Awaitable, Callable, Mapping

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy

from services.runtime import sinks

log = logging.getLogger(__name__)

# (subject, data, messages pending after this one) -> None, or an awaitable to finish before the next message
OnMessage = Callable[[bytes, bytes, int], "Awaitable[None] | None"]

IDLE_HEARTBEAT = 5.0
SILENT_HEARTBEATS_BEFORE_RESET = 3
RETRY_SECONDS = 1.0


class OrderedConsumer:
    """Every message of `stream` on `filter_subject` (from `start_time`, an RFC 3339 time, or
    from the start), once each and in stream order, to `on_message`."""

    def __init__(self, nc: Client, js: JetStreamContext, stream: str, filter_subject: str, on_message: OnMessage, *,
                 start_time: str | None = None, idle_heartbeat: float = IDLE_HEARTBEAT):
        self.nc, self.js, self.stream, self.filter_subject = nc, js, stream, filter_subject
        self.on_message = on_message
        self.start_time = start_time
        self.idle_heartbeat = idle_heartbeat
        self.delivered_stream_seq = 0
        self.consumer_name: str | None = None
        self._consumer_seq = 0
        self._subscription = None
        self._heard = True
        self._reconnects = nc.stats["reconnects"]
        self._replacing: asyncio.Task | None = None
        self._stopping = False
        # what must wait for an unfinished awaitable of on_message: later messages, flow-control replies
        self._backlog: deque[Callable[[], Awaitable[None] | None]] = deque()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> ConsumerInfo:
        """Create the consumer; its info tells how many messages were pending at start."""
        info = await self._subscribe_and_create()
        self._spawn(self._watch_heartbeats())
        return info

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._drop_consumer()

    def _config(self, deliver_subject: str) -> ConsumerConfig:
        if self.delivered_stream_seq:
            start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": self.delivered_stream_seq + 1}
        elif self.start_time is not None:
            start = {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": self.start_time}
        else:
            start = {"deliver_policy": DeliverPolicy.ALL}
        return ConsumerConfig(deliver_subject=deliver_subject, filter_subject=self.filter_subject,
                              ack_policy=AckPolicy.NONE, flow_control=True, idle_heartbeat=self.idle_heartbeat,
                              mem_storage=True, num_replicas=1, **start)

    async def _subscribe_and_create(self) -> ConsumerInfo:
        await self._drop_consumer()
        inbox = self.nc.new_inbox()
        self._subscription = await sinks.subscribe(self.nc, inbox, self._on_msg, self._on_frame)
        self._consumer_seq = 0
        info = await self.js.add_consumer(self.stream, self._config(inbox))
        self.consumer_name = info.name
        return info

    async def _drop_consumer(self) -> None:
        subscription, name = self._subscription, self.consumer_name
        self._subscription = self.consumer_name = None
        if subscription is not None:
            try:
                await sinks.unsubscribe(self.nc, subscription)
            except nats.errors.Error:
                pass  # the connection is closed or draining: the subscription goes with it
        if name is not None and self.nc.is_connected:
            try:
                await self.js.delete_consumer(self.stream, name)
            except Exception as error:  # already gone, or no answer: the server drops it once unused
                log.debug("ordered consumer %s not deleted: %s", name, error)

    def _replace(self, reason: str) -> None:
        if self._stopping or (self._replacing is not None and not self._replacing.done()):
            return
        log.info("ordered consumer on %s: %s; resuming after stream sequence %d",
                 self.filter_subject, reason, self.delivered_stream_seq)
        self._replacing = self._spawn(self._recreate())

    async def _recreate(self) -> None:
        while True:
            try:
                await self._subscribe_and_create()
                return
            except Exception as error:
                log.warning("ordered consumer on %s not re-created (%s); retrying", self.filter_subject, error)
                await asyncio.sleep(RETRY_SECONDS)

    async def _watch_heartbeats(self) -> None:
        silent = 0
        while True:
            await asyncio.sleep(self.idle_heartbeat)
            silent = 0 if self._heard else silent + 1
            self._heard = False
            reconnects = self.nc.stats["reconnects"]
            if reconnects != self._reconnects:
                self._reconnects = reconnects
                self._replace("reconnected")
            elif silent >= SILENT_HEARTBEATS_BEFORE_RESET:
                silent = 0
                self._replace(f"no heartbeat for {SILENT_HEARTBEATS_BEFORE_RESET * self.idle_heartbeat:g} s")

    def _on_frame(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bool:
        """A delivery, as a sink of `sinks` (or from `_on_msg`): always taken."""
        self._heard = True
        if headers and headers[8:9] == b" ":  # "NATS/1.0 100 ...": a status, not a stream message
            description, fields = _status_of(headers)
            self._on_status(description, fields, reply.decode())
            return True
        tokens = reply.split(b".")
        if len(tokens) < 9:
            return True
        base = 2 if len(tokens) == 9 else 4
        consumer_seq = int(tokens[base + 4])
        if consumer_seq != self._consumer_seq + 1:
            self._replace(f"consumer sequence {consumer_seq} after {self._consumer_seq}")
            return True
        self._consumer_seq = consumer_seq
        self.delivered_stream_seq = int(tokens[base + 3])
        pending = int(tokens[base + 6])
        if self._backlog:
            self._backlog.append(partial(self.on_message, subject, data, pending))
            return True
        try:
            unfinished = self.on_message(subject, data, pending)
        except Exception:
            log.exception("ordered consumer on %s: a message on %s failed", self.filter_subject, subject.decode())
            return True
        if unfinished is not None:
            self._backlog.append(lambda: unfinished)
            self._spawn(self._work_off_backlog())
        return True

    async def _on_msg(self, msg) -> None:
        """A delivery on nats-py's normal path (a client without sinks)."""
        headers = msg.headers or {}
        if headers.get("Status"):
            self._heard = True
            self._on_status(headers.get("Description", ""), headers, msg.reply)
        else:
            self._on_frame(msg.subject.encode(), msg.reply.encode(), msg.data, None)

    def _on_status(self, description: str, fields: Mapping[str, str], reply: str) -> None:
        if description.startswith("FlowControl"):
            self._answer_flow_control(reply)
        elif description.startswith("Idle"):
            stalled = fields.get("Nats-Consumer-Stalled")
            if stalled:
                self._answer_flow_control(stalled)
            last = fields.get("Nats-Last-Consumer")
            if last is not None and int(last) != self._consumer_seq:
                self._replace(f"heartbeat names consumer sequence {last}, last delivered {self._consumer_seq}")

    def _answer_flow_control(self, reply: str) -> None:
        """The server sends more once the messages before the request are applied."""
        if self._backlog:
            self._backlog.append(partial(self.nc.publish, reply, b""))
        else:
            self._spawn(self.nc.publish(reply, b""))

    async def _work_off_backlog(self) -> None:
        while self._backlog:
            try:
                unfinished = self._backlog[0]()
                if unfinished is not None:
                    await unfinished
            except Exception:
                log.exception("ordered consumer on %s: a message failed", self.filter_subject)
            self._backlog.popleft()

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _status_of(headers: bytes) -> tuple[str, dict[str, str]]:
    """Description and fields of a status: b"NATS/1.0 100 Idle Heartbeat\\r\\nNats-Last-Consumer: 5\\r\\n\\r\\n"."""
    status_line, *lines = headers.decode().split("\r\n")
    fields = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip()] = value.strip()
    return status_line[13:], fields
