"""How events reach a CallbackSubscriber: live (core NATS) or durable (a JetStream consumer).

Live: one core subscription, on the subscriber's subject if it has one filter, else on the
narrowest wildcard covering all of them (so events keep their log order across callback
types). Nothing from before the start; a failing handler is logged and the event dropped.

Durable: a named pull consumer on RINGLOG_EVENTS with `filter_subjects`, created or
updated with `js.add_consumer` (the config is applied on every start; deliver policy is
kept from the existing consumer, since a server cannot change it). Events are fetched
`max_in_flight` at a time (default 1: strict log order, even across retries), handed to
the subscriber one by one and acked (`ack_sync`) after the handlers return. A failure is
nak'ed with a delay of `retry_delay * attempt` and redelivered; after `max_deliver`
failed deliveries the event is published to the dead-letter subject

    <prefix>.dlq.<durable>.<category>.<callback>.<callID>.<recipient>

(outside `<prefix>.evt.>`, so it never enters the log) with headers `Ringlog-Error`,
`Ringlog-Deliveries`, `Ringlog-Stream-Sequence`, `Ringlog-Subject` and
`Nats-Msg-Id: <durable>-<eventID>`, then acked. Core NATS keeps nothing: to keep dead
letters, create a stream on `<prefix>.dlq.>` (`ensure_dead_letter_stream`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from schemas.subjects import STREAM_NAME, Subjects

log = logging.getLogger(__name__)

Handle = Callable[[str, bytes], Awaitable[bool]]
DURABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEAD_LETTER_STREAM = "RINGLOG_DLQ"


class PoisonEvent(Exception):
    """A message on an event subject that is not a valid event: no retry can help, so it is
    dead-lettered at once."""


def dead_letter_subject(subjects: Subjects, durable: str, event_subject: str) -> str:
    head = f"{subjects.prefix}.evt."
    if not event_subject.startswith(head):
        raise ValueError(f"not an event subject: {event_subject}")
    return f"{subjects.prefix}.dlq.{durable}.{event_subject[len(head):]}"


async def ensure_dead_letter_stream(js, subjects: Subjects, name: str = DEAD_LETTER_STREAM) -> None:
    """A file stream on `<prefix>.dlq.>` that keeps every dead letter (created once)."""
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=name, subjects=[f"{subjects.prefix}.dlq.>"],
                                         storage=StorageType.FILE, duplicate_window=120.0))


def covering_subject(subjects: Subjects, filters: list[str]) -> str:
    """One subject that matches every filter (token-wise: equal tokens stay, others become *)."""
    if len(filters) == 1:
        return filters[0]
    columns = zip(*(subject.split(".") for subject in filters))
    return ".".join(tokens[0] if len(set(tokens)) == 1 else "*" for tokens in columns)


class LiveDelivery:
    def __init__(self, nc: NatsClient, subjects: Subjects, filters: list[str], handle: Handle):
        self.nc = nc
        self.subject = covering_subject(subjects, filters)
        self.handle = handle
        self.failures = 0
        self._subscription = None

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(self.subject, cb=self._on_message)
        await self.nc.flush()  # interest is registered before start() returns

    async def _on_message(self, message) -> None:
        try:
            await self.handle(message.subject, message.data)
        except Exception:
            self.failures += 1
            log.exception("live handler failed on %s; the event is dropped (use a durable subscriber "
                          "for retries)", message.subject)

    async def stop(self) -> None:
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await subscription.drain()


@dataclass(frozen=True)
class DurableOptions:
    name: str
    deliver: str = "all"  # where a new consumer starts: "all" (the whole log) or "new"
    max_deliver: int = 5
    retry_delay: float = 1.0
    ack_wait: float = 30.0
    max_in_flight: int = 1
    poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not DURABLE_NAME.fullmatch(self.name):
            raise ValueError(f"durable name {self.name!r}: 1-64 of A-Z a-z 0-9 _ -")
        if self.deliver not in ("all", "new"):
            raise ValueError("deliver must be 'all' or 'new'")
        if self.max_deliver < 1 or self.max_in_flight < 1:
            raise ValueError("max_deliver and max_in_flight must be at least 1")


def consumer_config(options: DurableOptions, filters: list[str], deliver_policy: DeliverPolicy) -> ConsumerConfig:
    return ConsumerConfig(
        name=options.name,
        durable_name=options.name,
        description="ringlog callback subscriber",
        deliver_policy=deliver_policy,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=options.ack_wait,
        # one spare delivery: an event whose last attempt never answered (the process died)
        # is dead-lettered on that spare delivery instead of being dropped by the server
        max_deliver=options.max_deliver + 1,
        filter_subject=filters[0] if len(filters) == 1 else None,
        filter_subjects=filters if len(filters) > 1 else None,
        max_ack_pending=options.max_in_flight,
        replay_policy=ReplayPolicy.INSTANT,
    )


class DurableDelivery:
    def __init__(self, nc: NatsClient, subjects: Subjects, filters: list[str], handle: Handle, options: DurableOptions):
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = subjects
        self.filters = filters
        self.handle = handle
        self.options = options
        self.dead_letters = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._pull = None

    async def ensure_consumer(self) -> None:
        """Create the consumer, or update it to this config (js.add_consumer is create-or-update)."""
        policy = DeliverPolicy.ALL if self.options.deliver == "all" else DeliverPolicy.NEW
        try:
            existing = await self.js.consumer_info(STREAM_NAME, self.options.name)
            policy = existing.config.deliver_policy or policy
        except NotFoundError:
            pass
        await self.js.add_consumer(STREAM_NAME, consumer_config(self.options, self.filters, policy))

    async def start(self) -> None:
        await self.ensure_consumer()
        self._pull = await self.js.pull_subscribe_bind(durable=self.options.name, stream=STREAM_NAME)
        self._task = asyncio.create_task(self._run(), name=f"ringlog-durable-{self.options.name}")

    async def stop(self) -> None:
        """Finish the fetch in progress (at most poll_seconds) and the events it brought, then leave."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._pull is not None:
            await self._pull.unsubscribe()
        await self.nc.flush()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = await self._pull.fetch(self.options.max_in_flight, timeout=self.options.poll_seconds)
            except NatsTimeout:
                continue
            except Exception:
                log.exception("durable %s: fetch failed; retrying", self.options.name)
                await asyncio.sleep(self.options.poll_seconds)
                continue
            for message in messages:
                try:
                    await self._process(message)
                except Exception:  # an ack/nak/publish that failed: the server redelivers after ack_wait
                    log.exception("durable %s: could not settle %s", self.options.name, message.subject)

    async def _process(self, message) -> None:
        attempt = message.metadata.num_delivered
        if attempt > self.options.max_deliver:
            error = f"delivered {attempt} times; the subscriber stopped during the last attempt"
            return await self._dead_letter(message, error)
        try:
            await self.handle(message.subject, message.data)
        except Exception as failure:
            if attempt >= self.options.max_deliver or isinstance(failure, PoisonEvent):
                log.error("durable %s: %s failed %d time(s), dead-lettered: %r",
                          self.options.name, message.subject, attempt, failure)
                return await self._dead_letter(message, f"{type(failure).__name__}: {failure}")
            log.warning("durable %s: %s failed (attempt %d of %d), redelivering: %r",
                        self.options.name, message.subject, attempt, self.options.max_deliver, failure)
            await message.nak(delay=self.options.retry_delay * attempt)
            return
        await message.ack_sync()

    async def _dead_letter(self, message, error: str) -> None:
        subject = dead_letter_subject(self.subjects, self.options.name, message.subject)
        event_id = (message.headers or {}).get("Nats-Msg-Id", f"seq-{message.metadata.sequence.stream}")
        headers = {
            "Ringlog-Error": " ".join(error.split())[:500],
            "Ringlog-Deliveries": str(message.metadata.num_delivered),
            "Ringlog-Stream-Sequence": str(message.metadata.sequence.stream),
            "Ringlog-Subject": message.subject,
            "Nats-Msg-Id": f"{self.options.name}-{event_id}",
        }
        await self.nc.publish(subject, message.data, headers=headers)
        await self.nc.flush()
        self.dead_letters += 1
        await message.ack_sync()
