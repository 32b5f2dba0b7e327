"""The event store of one service: an eventsourcing Application with a msgspec mapper.

Callback events are stored as the exact JSON that goes on the wire, so the relay
publishes the stored bytes unchanged. Alongside them, each handled command leaves a
`CommandRecord` (its own one-event stream) in the same transaction: that is what makes
a retried `commandID` return the first result, and two concurrent copies of one command
collide on the store's primary key instead of both writing.

On a SQLite file the hot reads and the group commit use plain connections
(`sqlite_files`); eventsourcing creates the tables and serves every other backend.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Mapper, Notification, StoredEvent

from schemas.events import BY_NAME, Event, decode_event
from services.runtime.sqlite_files import SQLiteReader, SQLiteWriter, StoredRow, shift

COMMAND_TOPIC = "ringlog:CommandRecord"


class CommandRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The first answer to a command: a success reply, or an error (status, code, message)."""

    commandID: str
    verb: str
    status: int = 200
    reply: dict[str, Any] = {}
    code: str = ""
    message: str = ""


class WrittenRow(NamedTuple):
    """A row as a group commit wrote it: its position in the notification log, its topic,
    the stored bytes and the payload they encode (the relay publishes from these)."""

    id: int
    topic: str
    state: bytes
    payload: "Event | CommandRecord"


class PreparedGroup(NamedTuple):
    """A group's rows encoded and checked, ready to be written: (stream, version, topic, state)."""

    rows: list[tuple[str, int, str, bytes]]
    payloads: list["Event | CommandRecord"]


@dataclass(frozen=True)
class Recorded:
    """A payload placed at one position of one stream of the store."""

    originator_id: str
    originator_version: int
    payload: Event | CommandRecord


class MsgspecMapper(Mapper):
    """Stores msgspec payloads as JSON; topics are callback names (or COMMAND_TOPIC)."""

    def to_stored_event(self, domain_event: Recorded) -> StoredEvent:  # type: ignore[override]
        topic, state = encode_payload(domain_event.payload)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Event | CommandRecord:  # type: ignore[override]
        if stored_event.topic == COMMAND_TOPIC:
            return msgspec.json.decode(stored_event.state, type=CommandRecord)
        return decode_event(stored_event.state)


def encode_payload(payload: Event | CommandRecord) -> tuple[str, bytes]:
    """The topic and stored bytes of a payload; an event is decoded back first (msgspec
    constructors do not validate: never store what cannot be read back)."""
    if isinstance(payload, CommandRecord):
        return COMMAND_TOPIC, _encode(payload)
    state = _encode(payload)
    decode_event(state)
    return payload.type, state


_encode = msgspec.json.Encoder().encode


class InvalidEvent(Exception):
    """A decision built an event that breaks the catalog's own rules (a bug, answered as 500)."""


class DuplicateWrite(Exception):
    """Another writer stored the same stream position or the same command first."""


def command_stream(command_id: str) -> str:
    return f"command:{command_id}"


class EventStore:
    """Load a stream, append events plus the command record atomically, read the outbox."""

    def __init__(self, service: str, sqlite_path: str | None = None, env: dict[str, str] | None = None):
        settings = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "ORIGINATOR_ID_TYPE": "text",
            "MAPPER_TOPIC": f"{MsgspecMapper.__module__}:{MsgspecMapper.__qualname__}",
            "SQLITE_LOCK_TIMEOUT": "10",
        }
        if sqlite_path:
            settings["SQLITE_DBNAME"] = sqlite_path
        settings.update(env or {})
        app_class = type(f"{service.title().replace('-', '')}Store", (Application,), {"name": service.upper().replace("-", "_")})
        self.app: Application = app_class(env=settings)
        self.recorder = self.app.recorder
        self._reader = SQLiteReader.for_recorder(self.recorder)
        self._writer = SQLiteWriter.for_recorder(self.recorder, float(settings["SQLITE_LOCK_TIMEOUT"]))

    def load(self, stream: str) -> list[Event]:
        if self._reader is not None:
            return [decode_event(state) for state in self._reader.states(stream)]
        return list(self.app.events.get(stream))  # type: ignore[arg-type]

    def command_record(self, command_id: str) -> CommandRecord | None:
        if self._reader is not None:
            states = self._reader.states(command_stream(command_id))
            return _decode_record(states[0]) if states else None
        found = list(self.app.events.get(command_stream(command_id)))  # type: ignore[arg-type]
        return found[0] if found else None  # type: ignore[return-value]

    def append(self, writes: Iterable[tuple[str, Sequence[Event]]], record: CommandRecord | None) -> list[int]:
        """Append each stream's events at their `seq` and the command record, in one transaction."""
        return self.append_group([(writes, record)])

    def append_group(self, group: Sequence[tuple[Iterable[tuple[str, Sequence[Event]]], CommandRecord | None]]) -> list[int]:
        """Several commands' events and records in one transaction (group commit); their positions."""
        return [row.id for row in self.write_group(self.prepare_group(group))]

    def prepare_group(self, group: Sequence[tuple[Iterable[tuple[str, Sequence[Event]]], CommandRecord | None]]) -> PreparedGroup:
        """Encode and check a group's rows (refused here, before the transaction starts)."""
        prepared = PreparedGroup([], [])
        try:
            for writes, record in group:
                for stream, events in writes:
                    for event in events:
                        prepared.rows.append((stream, event.seq, *encode_payload(event)))
                        prepared.payloads.append(event)
                if record is not None:
                    prepared.rows.append((command_stream(record.commandID), 1, *encode_payload(record)))
                    prepared.payloads.append(record)
        except msgspec.ValidationError as error:
            raise InvalidEvent(f"refusing to store an invalid event: {error}") from error
        return prepared

    def write_group(self, prepared: PreparedGroup) -> list[WrittenRow]:
        """Write prepared rows in one transaction (durable when this returns); all or nothing."""
        if not prepared.rows:
            return []
        try:
            if self._writer is not None:
                first = self._writer.insert(prepared.rows)
                positions: Sequence[int] = range(first, first + len(prepared.rows))
            else:
                # the recorder's own insert: `app.events.put` would wrap each row in a
                # Recording and a Notification that nobody here reads
                positions = self.recorder.insert_events([StoredEvent(*row) for row in prepared.rows]) or []
        except (IntegrityError, sqlite3.IntegrityError) as error:
            raise DuplicateWrite(str(error)) from error
        return [WrittenRow(position, topic, state, payload)
                for position, (_, _, topic, state), payload in zip(positions, prepared.rows, prepared.payloads)]

    def notifications(self, after: int, limit: int) -> Sequence[Notification | StoredRow]:
        """Up to `limit` rows after position `after`, in store order (each has id, topic, state)."""
        if self._reader is not None:
            return self._reader.rows_after(after, limit)
        return self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def recent_streams(self, topic: str, window_seconds: float) -> list[str]:
        """Streams whose `topic` event lies within `window_seconds` before the last stored event.

        Reads backwards from the newest row and stops at the window's edge, so the cost
        follows recent activity, not the size of the history.
        """
        if self._reader is not None:
            return self._reader.recent_streams(topic, window_seconds, COMMAND_TOPIC)
        events = [event for _, event in self.events_since(0)]
        if not events:
            return []
        cutoff = shift(events[-1].occurredAt, -window_seconds)  # from the newest event, as the reader does
        return list(dict.fromkeys(event.callID for event in events if event.type == topic and event.occurredAt >= cutoff))

    def events_since(self, after: int = 0, batch: int = 1000) -> Iterable[tuple[int, Event]]:
        """Every stored callback event after a position, in store order (for local views)."""
        while True:
            page = self.notifications(after, batch)
            if not page:
                return
            for note in page:
                if note.topic in BY_NAME:
                    yield note.id, decode_event(note.state)
            after = page[-1].id

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            self._writer.close()
        self.app.close()


_decode_record = msgspec.json.Decoder(CommandRecord).decode
