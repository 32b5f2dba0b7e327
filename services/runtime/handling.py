"""The service layer's common moves: answer retries, stamp time and ids, commit atomically.

A handler loads state, calls the pure `decide`, and commits the events together with the
command's record. A refusal of the rules (403/409) is committed too, as the onError
event for the acting user, so a retried command gets the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from schemas.commands import Command
from schemas.enums import Source
from schemas.events import Event
from services.runtime.domain import CommandRejected, Context, Stamper
from services.runtime.errors import ServiceError
from services.runtime.store import CommandRecord, EventStore


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_uuid() -> str:
    return str(uuid.uuid4())


Writes = Sequence[tuple[str, Sequence[Event]]]


class UnitOfWork:
    def __init__(
        self,
        store: EventStore,
        source: Source,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_uuid,
        on_commit: Callable[[Sequence[Event]], None] = lambda events: None,
    ):
        self.store = store
        self.source = source
        self.clock = clock
        self.new_id = new_id
        self.on_commit = on_commit
        # One writer at a time inside a process: decisions see the state the previous one left.
        self.lock = asyncio.Lock()

    def context(self) -> Context:
        return Context(now=self.clock(), new_id=self.new_id)

    def previous_answer(self, command: Command) -> dict[str, Any] | None:
        """The first answer to this commandID, replayed; raises it again if it was a refusal."""
        record = self.store.command_record(command.commandID)
        if record is None:
            return None
        if record.status != 200:
            raise ServiceError(record.status, record.code, record.message)
        return record.reply

    def commit(self, command: Command, writes: Writes, reply: dict[str, Any]) -> dict[str, Any]:
        events = [event for _, stream_events in writes for event in stream_events]
        reply = {**reply, "eventIDs": [event.eventID for event in events]}
        record = CommandRecord(commandID=command.commandID, verb=verb_of(command), reply=reply)
        self.store.append(writes, record)
        self.on_commit(events)
        return reply

    def commit_refusal(
        self, command: Command, stream: str, version: int, call_id: str, refusal: CommandRejected
    ) -> list[Event]:
        """Record the onError event (403/409) and the refusal; returns the events written."""
        events: list[Event] = []
        if refusal.records_error_event:
            stamp = Stamper(self.context(), source=self.source, call_id=call_id,
                            causation_id=command.commandID, version=version)
            events.append(refusal.error_event(stamp, command.actor.id))
            record = CommandRecord(commandID=command.commandID, verb=verb_of(command),
                                   status=refusal.status, code=refusal.code, message=refusal.message)
            self.store.append([(stream, events)], record)
            self.on_commit(events)
        return events


def internal_command_id(kind: str, key: str) -> str:
    """A deterministic, rule-abiding commandID for a command the service issues itself."""
    return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def verb_of(command: object) -> str:
    """Wire verb of a command; internal commands (timeouts, abandon) go by their class name."""
    return getattr(command, "verb", type(command).__name__)
