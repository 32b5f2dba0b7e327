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
import os
import re
import sqlite3
from collections import Counter, deque
from typing import Callable

import msgspec
from nats.aio.client import Client

from schemas.events import BY_NAME, category_of
from schemas.subjects import STREAM_NAME, Subjects
from services.runtime.publisher import StreamPublisher
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
_Batch = tuple[list[tuple[str, bytes, str, str]], int]


class RelayPosition:
    """The last store position the relay has seen acknowledged by the stream.

    A hint, kept in a small file beside the store (`<store>.relay-<name>`): one `pwrite`
    per published batch, no fsync, no SQLite transaction. Losing its last updates (only a
    machine crash can: the page cache survives a killed process) re-publishes those
    events, which the stream drops as duplicates. A store from before this file existed
    kept the position in its `ringlog_relay` table: it is read once from there.
    """

    _SIZE = 8

    def __init__(self, sqlite_path: str, name: str):
        self._path = f"{sqlite_path}.relay-{name}"
        fresh = not os.path.exists(self._path)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        if fresh:
            self.set(_position_in_table(sqlite_path, name))

    def get(self) -> int:
        data = os.pread(self._fd, self._SIZE, 0)
        return int.from_bytes(data, "little") if len(data) == self._SIZE else 0

    def set(self, position: int) -> None:
        os.pwrite(self._fd, position.to_bytes(self._SIZE, "little"), 0)

    def close(self) -> None:
        os.close(self._fd)


def _position_in_table(sqlite_path: str, name: str) -> int:
    if not os.path.exists(sqlite_path):
        return 0
    db = sqlite3.connect(sqlite_path)
    try:
        row = db.execute("SELECT position FROM ringlog_relay WHERE name=?", (name,)).fetchone()
    except sqlite3.OperationalError:  # no such table
        row = None
    finally:
        db.close()
    return row[0] if row else 0


class Relay:
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
        self.published_position = position.get()
        self._handed: deque[WrittenRow] = deque()
        # True once the store had nothing after the position and every row since was handed
        # over: then an empty hand-off means nothing to publish, without asking the store
        self._only_handed = False

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
            return
        self._handed.extend(rows)

    def wake(self) -> None:
        """Tell the relay that new events were committed."""
        self._wakeup.set()

    def backlog(self) -> int:
        return max(0, self._store.max_position() - self.published_position)

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                moved = await self.publish_pending()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the bus is down or refused: retry the same batch
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
        """Publish one batch after the current position; False when there was nothing."""
        batch = self._handed_batch()
        if batch is None and not self._only_handed:
            batch = self._store_batch()
        if batch is None:
            return False
        page, end = batch
        messages, callbacks = [], Counter()
        for subject, state, event_id, callback in page:
            messages.append((subject, state, self._headers(event_id)))
            callbacks[callback] += 1
        await self._publisher.publish(messages, self._ack_timeout)
        for callback, count in callbacks.items():
            self._on_published(callback, count)
        self.published_position = end
        self._position.set(end)
        return True

    def _handed_batch(self) -> _Batch | None:
        """The next batch from the handed-off rows, if they continue the position without a gap
        (they stay handed until published: a refused batch is published again from memory)."""
        handed, start = self._handed, self.published_position
        while handed and handed[0].id <= start:
            handed.popleft()
        position, page = start, []
        for row in handed:
            if row.id != position + 1 or position - start == self._batch_size:
                break
            position = row.id
            if row.topic in BY_NAME:
                event = row.payload
                subject = self._subjects.event_subject(
                    category_of(event.type, event.source), event.type, event.callID, event.recipient)
                page.append((subject, row.state, event.eventID, event.type))
        if position == start:
            self._only_handed = self._only_handed and not handed  # a gap: the store has rows we lack
            return None
        return page, position

    def _store_batch(self) -> _Batch | None:
        rows = self._store.notifications(self.published_position, self._batch_size)
        if not rows:
            self._only_handed = True  # caught up: from now on every new row is handed over
            return None
        page = []
        for note in rows:
            if note.topic in BY_NAME:
                head = _decode_head(note.state)
                subject = self._subjects.event_subject(
                    category_of(head.type, head.source), head.type, head.callID, head.recipient)
                page.append((subject, note.state, head.eventID, head.type))
        return page, rows[-1].id

    async def drain(self, timeout: float = 5.0) -> None:
        """Publish everything committed so far (used on shutdown and in tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.backlog() and asyncio.get_running_loop().time() < deadline:
            if not await self.publish_pending():
                break
