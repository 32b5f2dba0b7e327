"""The service layer's common moves: answer retries, stamp time and ids, commit in groups.

A handler takes `uow.lock`, loads state, calls the pure `decide`, and *stages* the events
together with the command's record; it awaits the returned future after releasing the
lock. A committer task, which runs once the loop has staged what its last read brought,
writes everything staged so far in one SQLite transaction, on the loop: concurrent
commands share one commit, and each still gets its answer only once its events are on
disk. Commands that arrive during the fsync wait in the socket and form the next group
(a worker thread cost each group two wake-ups and lost throughput, docs/performance.md
step 29); what is already queued for NATS goes out first when its write slot has come
(`before_commit`), instead of waiting behind the fsync. The committed rows go to the
relay first, which queues their events on the connection at once, so each reply leaves
after the events it reports. A refusal of the rules (403/409) is staged too, as the
onError event for the acting user, so a retried command gets the same answer.

If a group fails to commit, every decision staged after it may rest on it, so all of
them fail (500/409) and the services' state caches drop what those decisions touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Generic, Sequence, TypeVar

from schemas.commands import Command
from schemas.enums import Source
from schemas.events import Event
from schemas.ids import COMMAND_ID_MAX_BYTES, InvalidId, check_id, new_uuid
from services.runtime.domain import CommandRejected, Context, Stamper
from services.runtime.errors import ServiceError, to_service_error
from services.runtime.store import CommandRecord, EventStore, WrittenRow

log = logging.getLogger(__name__)
S = TypeVar("S")
Writes = Sequence[tuple[str, Sequence[Event]]]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Staged:
    writes: Writes
    record: CommandRecord
    answer: asyncio.Future
    outcome: dict[str, Any] | ServiceError  # the answer once committed: a reply, or the refusal to raise

    def settle(self, failure: ServiceError | None = None) -> None:
        if self.answer.done():  # the caller gave up (cancelled)
            return
        outcome = failure or self.outcome
        if isinstance(outcome, ServiceError):
            self.answer.set_exception(outcome)
        else:
            self.answer.set_result(outcome)


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # never "exception never retrieved"


class UnitOfWork:
    def __init__(
        self,
        store: EventStore,
        source: Source,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_uuid,
        on_commit: Callable[[Sequence[Event]], None] = lambda events: None,
        on_written: Callable[[list[WrittenRow]], None] = lambda rows: None,
        before_commit: Callable[[], None] = lambda: None,
    ):
        self.store = store
        self.source = source
        self.clock = clock
        self.new_id = new_id
        self.on_commit = on_commit
        self.on_written = on_written
        self.before_commit = before_commit  # the loop is about to block in an fsync
        self.on_abort: list[Callable[[set[str]], None]] = []
        # One decision at a time inside a process: each sees the state the previous one left.
        self.lock = asyncio.Lock()
        self._staged: list[_Staged] = []
        self._in_flight: dict[str, asyncio.Future] = {}
        self._committer: asyncio.Task | None = None
        self.groups_committed = 0

    def context(self) -> Context:
        return Context(now=self.clock(), new_id=self.new_id)

    async def previous_answer(self, command: Command) -> dict[str, Any] | None:
        """The first answer to this commandID (awaited if still committing); a refusal is raised again."""
        pending = self._in_flight.get(command.commandID)
        if pending is not None:
            return await asyncio.shield(pending)
        record = self.store.command_record(command.commandID)
        if record is None:
            return None
        if record.status != 200:
            raise ServiceError(record.status, record.code, record.message)
        return record.reply

    def stage(self, command: Any, writes: Writes, reply: dict[str, Any]) -> asyncio.Future:
        """Queue events plus the command's record; the future gives the reply once committed."""
        events = [event for _, stream_events in writes for event in stream_events]
        reply = {**reply, "eventIDs": [event.eventID for event in events]}
        record = CommandRecord(commandID=command.commandID, verb=verb_of(command), reply=reply)
        return self._queue(writes, record, reply)

    def stage_refusal(
        self, command: Command, stream: str, version: int, call_id: str, refusal: CommandRejected
    ) -> tuple[list[Event], asyncio.Future]:
        """Queue the onError event (403/409) and the refusal; the future raises it once committed."""
        error = ServiceError(refusal.status, refusal.code, refusal.message)
        if not refusal.records_error_event:
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(error)
            return [], failed
        stamp = Stamper(self.context(), source=self.source, call_id=call_id,
                        causation_id=command.commandID, version=version)
        events = [refusal.error_event(stamp, command.actor.id)]
        record = CommandRecord(commandID=command.commandID, verb=verb_of(command),
                               status=refusal.status, code=refusal.code, message=refusal.message)
        return events, self._queue([(stream, events)], record, error)

    async def decide(self, command: Any, state: Any, decision: Callable[[], list[Event]],
                     follow: Callable[[list[Event]], None]) -> list[Event]:
        """The pure decision's events; a refusal of the rules is staged as onError (403/409),
        `follow`ed into the caller's state and raised once committed. A refusal with no
        state (404 unknown call) writes nothing."""
        try:
            return decision()
        except CommandRejected as refusal:
            if state is None:
                raise ServiceError(refusal.status, refusal.code, refusal.message) from None
            written, refused = self.stage_refusal(command, command.callID, state.version, command.callID, refusal)
            if written:
                follow(written)
        await refused  # raises the refusal once it is committed (rare: awaited under the lock)
        raise AssertionError("unreachable")

    def _queue(self, writes: Writes, record: CommandRecord, outcome: dict[str, Any] | ServiceError) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        answer.add_done_callback(_retrieved)
        self._staged.append(_Staged(writes, record, answer, outcome))
        self._in_flight[record.commandID] = answer
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_groups(), name=f"{self.source.value}-committer")
        return answer

    async def _commit_groups(self) -> None:
        while self._staged:
            group, self._staged = self._staged, []
            items = [(staged.writes, staged.record) for staged in group]
            try:
                self.before_commit()
                written = self.store.write_group(self.store.prepare_group(items))
            except Exception as failure:
                self._fail(group + self._staged, failure)
                self._staged = []
                continue
            self.groups_committed += 1
            # the relay queues the events on the connection first (handed over and sent at
            # once), so every reply below leaves after the events it reports
            self.on_written(written)
            self.on_commit([event for staged in group for _, events in staged.writes for event in events])
            for staged in group:
                self._in_flight.pop(staged.record.commandID, None)
                staged.settle()

    def _fail(self, group: list[_Staged], failure: Exception) -> None:
        error = to_service_error(failure)
        log.warning("a commit group of %d commands failed: %s", len(group), error.message)
        touched = {stream for staged in group for stream, _ in staged.writes}
        for drop in self.on_abort:
            drop(touched)
        for staged in group:
            self._in_flight.pop(staged.record.commandID, None)
            staged.settle(error)

    async def flush(self) -> None:
        """Wait until everything staged so far is committed (or failed)."""
        while self._committer is not None and not self._committer.done():
            await asyncio.shield(self._committer)


class StateCache(Generic[S]):
    """Latest state per stream, including staged decisions; bounded, least recently used out.

    The store is only read on a miss. A failed commit group drops the streams it touched.
    """

    def __init__(self, load: Callable[[str], S | None], capacity: int = 100_000):
        self._load = load
        self._states: OrderedDict[str, S | None] = OrderedDict()
        self.capacity = capacity
        self.misses = 0

    def get(self, stream: str) -> S | None:
        if stream in self._states:
            self._states.move_to_end(stream)
            return self._states[stream]
        self.misses += 1
        state = self._load(stream)
        self.put(stream, state)
        return state

    def peek(self, stream: str) -> S | None:
        """The state, without keeping it on a miss (one-off looks at old streams)."""
        if stream in self._states:
            return self._states[stream]
        return self._load(stream)

    def put(self, stream: str, state: S | None) -> None:
        self._states[stream] = state
        self._states.move_to_end(stream)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def drop(self, streams: set[str]) -> None:
        for stream in streams:
            self._states.pop(stream, None)

    def __len__(self) -> int:
        return len(self._states)


def internal_command_id(kind: str, key: str) -> str:
    """A deterministic, rule-abiding commandID for a command the service issues itself:
    `<kind>-<key>` where that obeys the id rules, so a time-ordered key (a callID the
    service made) keeps its order in the store's index (docs/performance.md, step 38);
    else `<kind>-` and a hash of the key."""
    plain = f"{kind}-{key}"
    try:
        return check_id(plain, "commandID", COMMAND_ID_MAX_BYTES)
    except InvalidId:
        return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def verb_of(command: object) -> str:
    """Wire verb of a command; internal commands (timeouts, abandon) go by their class name."""
    return getattr(command, "verb", type(command).__name__)
