"""Applies batches of log messages to the read models: decode and fold, then write in one transaction.

The same code keeps the live read models and rebuilds them from sequence 1, so both
give the same file. Exactly-once rests on the stored position:
- a message at or below the position is a redelivery and is skipped;
- a message beyond position + 1 is a gap (a delivery was lost): the batch stops before
  it and the caller re-positions its consumer at `next_seq`;
- an event whose eventID was already applied within the last DEDUPE_WINDOW sequences
  (re-published after the stream's duplicate window) moves the position, nothing else.

A batch is `prepare`d on the event loop (decode, fold into cached views, rows to
write) and `write`n in one transaction, which can run on a writer thread while later
batches are prepared: SQLite does its work without the GIL. Views that miss the
cache are read through the store's second connection, which sees committed data only,
so a view is evicted from the cache only once its last write is committed.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import msgspec

from projections.call_view import CallView, finish, fold_call, participants
from projections.device_view import FOLDS as DEVICE_FOLDS, DeviceView, fold_device
from projections.store import Batch, ProjectionStore
from schemas.events import decode_event

log = logging.getLogger(__name__)

CACHE_LIMIT = 50_000
DEDUPE_WINDOW = 100_000
_call_decoder = msgspec.json.Decoder(CallView)
_device_decoder = msgspec.json.Decoder(DeviceView)
_encode = msgspec.json.Encoder().encode
_decode_errors = (msgspec.ValidationError, msgspec.DecodeError)


class Message(NamedTuple):
    seq: int  # stream sequence
    ts: int  # stream time, ns since the epoch
    subject: str
    data: bytes
    reply: str = ""  # where to ack it


@dataclass
class Prepared:
    handled: int  # leading messages of the batch covered by the position once written
    applied: int = 0  # events folded into the views
    gap: bool = False  # a message beyond next_seq stopped the batch
    position: tuple[int, int] | None = None  # (seq, ts) to store; None: nothing to write
    batch: Batch = field(default_factory=Batch)
    parameters: tuple = ()  # the encoded batch, for the writer


class Projector:
    def __init__(self, store: ProjectionStore):
        self.store = store
        self.reset()

    def reset(self) -> None:
        """Start again from what the file holds (after a failed write, or a swapped file)."""
        self.position, self.position_ts = self.committed = self.store.position()
        self._calls: dict[str, CallView] = {}
        self._rows: dict[str, list[tuple]] = {}  # participant rows last written per call
        self._devices: dict[str, DeviceView] = {}
        self._recent: deque[tuple[int, str]] = deque()
        self._recent_ids: set[str] = set()
        rows = self.store.db.execute("SELECT seq, event_id FROM timeline WHERE seq > ? ORDER BY seq",
                                     (self.position - DEDUPE_WINDOW,)).fetchall()
        self._remember([seq for seq, _ in rows], [event_id for _, event_id in rows])

    @property
    def next_seq(self) -> int:
        return self.position + 1

    @property
    def unwritten_limit(self) -> int:
        """Events that may be prepared and not yet written. `written` keeps the newest
        CACHE_LIMIT * 3/4 cache entries; every view an unwritten event changed is among
        them while unwritten events take half of that, the other half being room for
        the batch being prepared."""
        return CACHE_LIMIT * 3 // 8

    def skip_to(self, seq: int) -> None:
        """The log starts later than expected (older events were removed): go on from `seq`."""
        self.position = max(self.position, seq - 1)

    def apply(self, messages: list[Message]) -> Prepared:
        """prepare + write, on the calling thread."""
        prepared = self.prepare(messages)
        try:
            self.write(prepared)
        except BaseException:
            self.reset()
            raise
        self.written(prepared)
        return prepared

    # --- on the event loop ------------------------------------------------------------------
    def prepare(self, messages: list[Message]) -> Prepared:
        expected, handled, last = self.position + 1, 0, None
        prepared = Prepared(0)
        batch = prepared.batch
        kept: list[Message] = []
        events: list = []
        for message in messages:  # the hot loop: order check and decode, nothing else
            if message.seq != expected:
                if message.seq < expected:
                    handled += 1
                    continue
                prepared.gap = True
                break
            expected += 1
            handled += 1
            last = message
            try:
                events.append(decode_event(message.data))
            except _decode_errors as error:
                log.warning("undecodable event at stream sequence %d (%s): %s", message.seq, message.subject, error)
                batch.undecodable.append((message.seq, message.subject, message.data.decode(errors="replace"),
                                          str(error)))
                continue
            kept.append(message)
        prepared.handled = handled
        if last is None:
            return prepared
        ids = [event.eventID for event in events]
        if not self._recent_ids.isdisjoint(ids) or len(set(ids)) != len(ids):
            kept, events, ids = self._without_duplicates(kept, events)
        seqs = [message.seq for message in kept]
        self._remember(seqs, ids)
        batch.timeline.extend([message.data for message in kept], seqs, [event.callID for event in events], ids)
        self._fold(seqs, events, batch)
        prepared.applied = len(events)
        prepared.position = (last.seq, last.ts)
        prepared.parameters = batch.encode(prepared.position)
        self.position, self.position_ts = prepared.position
        return prepared

    def _without_duplicates(self, kept: list[Message], events: list) -> tuple[list, list, list]:
        seen = set(self._recent_ids)
        keep_messages, keep_events = [], []
        for message, event in zip(kept, events):
            if event.eventID in seen:
                log.info("event %s at stream sequence %d is a duplicate; skipped", event.eventID, message.seq)
                continue
            seen.add(event.eventID)
            keep_messages.append(message)
            keep_events.append(event)
        return keep_messages, keep_events, [event.eventID for event in keep_events]

    def _remember(self, seqs: list[int], ids: list[str]) -> None:
        """Keep the eventIDs of the last DEDUPE_WINDOW sequences."""
        if not seqs:
            return
        recent = self._recent
        recent.extend(zip(seqs, ids))
        self._recent_ids.update(ids)
        horizon = seqs[-1] - DEDUPE_WINDOW
        while recent[0][0] <= horizon:
            self._recent_ids.discard(recent.popleft()[1])

    def _fold(self, seqs: list[int], events: list, batch: Batch) -> None:
        self._load_missing(events)
        calls: dict[str, CallView] = {}
        devices: dict[str, DeviceView] = {}
        cached_calls, cached_devices = self._calls, self._devices
        for seq, event in zip(seqs, events):
            call_id = event.callID
            view = calls.get(call_id)
            if view is None:
                view = cached_calls.pop(call_id, None)  # re-inserted last: the cache evicts the oldest
            calls[call_id] = fold_call(view, event, seq)
            if type(event) in DEVICE_FOLDS:
                user_id = event.recipient
                device = devices.get(user_id) or cached_devices.pop(user_id, None)
                devices[user_id] = fold_device(device, event)
        for call_id, view in calls.items():
            cached_calls[call_id] = finish(view)
            batch.calls.add(_encode(view), call_id, view.firstSeq, int(view.active))
            rows = participants(view)
            written = self._rows.get(call_id)
            if rows != written:
                batch.user_calls.extend(rows if written is None else [r for r in rows if r not in written])
                self._rows[call_id] = rows
        for user_id, device in devices.items():
            cached_devices[user_id] = device
            batch.devices.add(_encode(device), user_id)

    def _load_missing(self, events: list) -> None:
        """Bring the views this batch changes and the cache lacks from the file, in one query each."""
        calls = {event.callID for event in events} - self._calls.keys()
        for call_id, doc in self.store.committed_docs("calls", calls):
            self._calls[call_id] = view = _call_decoder.decode(doc)
            self._rows[call_id] = participants(view)
        users = {event.recipient for event in events if type(event) in DEVICE_FOLDS} - self._devices.keys()
        for user_id, doc in self.store.committed_docs("devices", users):
            self._devices[user_id] = _device_decoder.decode(doc)

    # --- on the writer ---------------------------------------------------------------------------
    def write(self, prepared: Prepared) -> None:
        """One transaction: the batch's rows and its position. Raises after rolling back."""
        if prepared.position is None:
            return
        self.store.write(prepared.parameters)

    # --- on the event loop, once written ---------------------------------------------------------
    def written(self, prepared: Prepared) -> None:
        """Note the commit and trim the caches. Only the oldest entries go: the newest
        CACHE_LIMIT * 3/4 hold every view that batches prepared and not yet written changed
        (at most `unwritten_limit` events)."""
        if prepared.position is not None:
            self.committed = prepared.position
        for cache, companion in ((self._calls, self._rows), (self._devices, {})):
            if len(cache) > CACHE_LIMIT:
                for key in list(cache)[: len(cache) - CACHE_LIMIT * 3 // 4]:
                    del cache[key]
                    companion.pop(key, None)
