"""The outbox relay: publishes each committed event of a service's store to JetStream.

It follows the store's notification log from the last position it published (kept in
a file beside the store), publishes the stored bytes with `Nats-Msg-Id = eventID` so a
re-publish after a crash is dropped by the stream's duplicate window, and only then
moves its position. Only committed rows are ever visible to it.

The unit of work hands it each group's rows as written (`take`): while those continue
its position without a gap they are published from memory, with no read of the store and
no decoding; otherwise (start-up backlog, a failed publish, a hand-off dropped because
the relay fell far behind) it reads the store.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter, deque
from typing import Any, Callable

import msgspec
from nats.aio.client import Client

from schemas.events import BY_NAME, category_of
from schemas.subjects import STREAM_NAME, Subjects
from services.runtime.publisher import StreamPublisher
from services.runtime.relay_position import RelayPosition
from services.runtime.store import EventStore, WrittenRow
from services.runtime.wire import header_block

log = logging.getLogger(__name__)


class _Head(msgspec.Struct):
    """The envelope fields a subject needs; the store validated the rest on write."""

    type: str
    eventID: str
    callID: str
    recipient: str
    source: str


_decode_head = msgspec.json.Decoder(_Head).decode
_HEADERS = header_block({"Nats-Msg-Id": "%b", "Nats-Expected-Stream": STREAM_NAME})  # %b: the eventID
_PLAIN_ID = re.compile(r"[0-9A-Za-z_-]+")
# a batch to publish: (subject, stored bytes, eventID, callback) per event, and the position it ends at
_Page = tuple[list[tuple[str, bytes, str, str]], int]


class Relay:
    """Publishes the store's events in order; live, it sends each group commit's events the
    moment they are handed over (`take`), before the commands' replies are queued, and keeps
    several batches in flight; any failure drops back to publishing from the store."""

    def __init__(
        self,
        store: EventStore,
        nc: Client,
        subjects: Subjects,
        position: RelayPosition,
        *,
        batch_size: int = 256,
        ack_timeout: float = 5.0,
        idle_poll: float = 0.5,
        on_published: Callable[[str, int], None] | None = None,
        on_error: Callable[[], None] | None = None,
        publisher: StreamPublisher | None = None,
    ):
        self._store = store
        self._publisher = publisher or StreamPublisher(nc)
        self._subjects = subjects
        self._position = position
        self._batch_size = batch_size
        self._ack_timeout = ack_timeout
        self._idle_poll = idle_poll
        self._wakeup = asyncio.Event()
        self._on_published = on_published or (lambda callback, count: None)
        self._on_error = on_error or (lambda: None)
        self.published_position = position.get()  # acknowledged by the stream
        self._handed: deque[WrittenRow] = deque()
        # True once the store had nothing after the position and every row since was handed
        # over: then an empty hand-off means nothing to publish, without asking the store
        self._only_handed = False
        # live: batches sent by `take`, awaiting their acks in order (end position, batch, callbacks)
        self._live = False
        self._sent_position = self.published_position
        self._in_flight: deque[tuple[int, Any, Counter]] = deque()

    HANDED_LIMIT = 10_000  # rows kept in memory at most (while the bus is away); beyond, the store has them

    def _headers(self, event_id: str) -> bytes:
        if event_id.isalnum() or _PLAIN_ID.fullmatch(event_id):  # our ids: nothing to check or strip
            return _HEADERS % event_id.encode()
        return header_block({"Nats-Msg-Id": event_id, "Nats-Expected-Stream": STREAM_NAME})

    def take(self, rows: list[WrittenRow]) -> None:
        """Rows a group commit just wrote, in position order (published without reading them back)."""
        if len(self._handed) + len(rows) > self.HANDED_LIMIT:
            self._handed.clear()
            self._only_handed = False
            self._go_offline()
            return
        self._handed.extend(rows)
        if not self._live or not rows:
            return
        if rows[0].id == self._sent_position + 1 and rows[-1].id - rows[0].id == len(rows) - 1:
            for start in range(0, len(rows), self._batch_size):  # the usual case: just these rows
                chunk = rows[start:start + self._batch_size]
                if not self._send(self._page(chunk), chunk[-1].id):
                    break
            self._wakeup.set()
        else:
            self._send_handed()

    def wake(self) -> None:
        """Tell the relay that new events were committed."""
        self._wakeup.set()

    def backlog(self) -> int:
        return max(0, self._store.max_position() - self.published_position)

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._publisher.start()  # (once) the acks' subscription, before going live
                if self._in_flight:
                    await self._settle_oldest()
                    moved = True
                else:
                    moved = await self.publish_pending()
                    if not moved and self._only_handed and not self._live:
                        self._go_live()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the bus is down or refused: publish again from the position
                self._go_offline()
                self._on_error()
                log.warning("relay publish failed, retrying in %.1fs: %s", backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not moved:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_poll)
                except asyncio.TimeoutError:
                    pass

    async def publish_pending(self) -> bool:
        """Publish one batch after the acknowledged position and wait for it; False when there was nothing."""
        batch = self._handed_batch(self.published_position)
        if batch is None and not self._only_handed:
            batch = self._store_batch()
        if batch is None:
            return False
        page, end = batch
        messages, callbacks = self._messages(page)
        await self._publisher.publish(messages, self._ack_timeout)
        self._acknowledged(end, callbacks)
        return True

    async def drain(self, timeout: float = 5.0) -> None:
        """Publish everything committed so far (used on shutdown and in tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while self._in_flight and asyncio.get_running_loop().time() < deadline:
                await self._settle_oldest()
        finally:
            self._go_offline()
        while self.backlog() and asyncio.get_running_loop().time() < deadline:
            if not await self.publish_pending():
                break

    # --- live ----------------------------------------------------------------------------
    def _go_live(self) -> None:
        self._live = True
        self._sent_position = self.published_position
        self._send_handed()

    def _go_offline(self) -> None:
        """Forget the batches in flight: whatever they stored, publishing again from the
        acknowledged position stores nothing twice (`Nats-Msg-Id`)."""
        self._live = False
        for _, sent, _ in self._in_flight:
            if sent is not None:
                self._publisher.abandon(sent)
        self._in_flight.clear()
        self._sent_position = self.published_position

    def _send_handed(self) -> None:
        while (batch := self._handed_batch(self._sent_position)) is not None:
            if not self._send(*batch):
                break
        self._wakeup.set()

    def _send(self, page: list[tuple[str, bytes, str, str]], end: int) -> bool:
        """Queue a batch on the connection now; False (and no longer live) when it cannot take it."""
        messages, callbacks = self._messages(page)
        sent = self._publisher.send_now(messages) if messages else None
        if messages and sent is None:  # the run loop publishes it instead
            self._live = False
            return False
        self._in_flight.append((end, sent, callbacks))
        self._sent_position = end
        return True

    async def _settle_oldest(self) -> None:
        end, sent, callbacks = self._in_flight[0]
        if sent is not None:
            await self._publisher.wait(sent, self._ack_timeout)
        if self._in_flight and self._in_flight[0][0] == end:
            self._in_flight.popleft()
            self._acknowledged(end, callbacks)

    # --- batches ---------------------------------------------------------------------------
    def _acknowledged(self, end: int, callbacks: Counter) -> None:
        for callback, count in callbacks.items():
            self._on_published(callback, count)
        self.published_position = end
        self._position.set(end)
        handed = self._handed
        while handed and handed[0].id <= end:
            handed.popleft()

    def _messages(self, page: list[tuple[str, bytes, str, str]]) -> tuple[list, Counter]:
        messages, callbacks = [], Counter()
        for subject, state, event_id, callback in page:
            messages.append((subject, state, self._headers(event_id)))
            callbacks[callback] += 1
        return messages, callbacks

    def _handed_batch(self, start: int) -> _Page | None:
        """The next batch after `start` from the handed-off rows, if they continue it without a
        gap (rows stay handed until acknowledged: a refused batch is published again from memory)."""
        handed = self._handed  # acknowledged rows already left it (`_acknowledged`)
        position, rows = start, []
        for row in handed:
            if row.id <= start:
                continue
            if row.id != position + 1 or position - start == self._batch_size:
                break
            position = row.id
            rows.append(row)
        if position == start:
            if handed and handed[-1].id > start:
                self._only_handed = False  # a gap: the store has rows we lack
            return None
        return self._page(rows), position

    def _entry(self, head, state: bytes) -> tuple[str, bytes, str, str]:
        """(subject, stored bytes, eventID, callback) of one event: `head` is the Event itself
        (handed over) or its envelope decoded from the store (`_Head`)."""
        callback = head.type
        subject = self._subjects.event_subject(category_of(callback, head.source), callback, head.callID, head.recipient)
        return subject, state, head.eventID, callback

    def _page(self, rows: list[WrittenRow]) -> list[tuple[str, bytes, str, str]]:
        return [self._entry(row.payload, row.state) for row in rows if row.topic in BY_NAME]

    def _store_batch(self) -> _Page | None:
        rows = self._store.notifications(self.published_position, self._batch_size)
        if not rows:
            self._only_handed = True  # caught up: from now on every new row is handed over
            return None
        return [self._entry(_decode_head(note.state), note.state) for note in rows if note.topic in BY_NAME], rows[-1].id
