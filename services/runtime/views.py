"""Local views a service keeps from the log (services learn about each other only there)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import msgspec
from nats.js import JetStreamContext

from schemas.enums import ZegoRoomStateChangedReason as RoomReason
from schemas.events import CallEnd, Event, StateChanged, decode_event
from schemas.types import User
from services.runtime.ordered import OrderedConsumer

log = logging.getLogger(__name__)

# How far back a (re)started service reads room states to know who is in a room now: a
# start-up costs the last day's room events, not the whole history. A user who joined
# more than this long ago, without any room event since, is not seen as in a room.
MEMBERSHIP_HORIZON = timedelta(hours=24)


class _Names(msgspec.Struct, frozen=True):
    user_name: Any = ""


class RoomChange(msgspec.Struct, frozen=True):
    """What membership reads of an onStateChanged: decoding only these fields takes a
    ninth of a full (validating) decode, and a view reads what its service wrote and checked."""

    callID: str
    recipient: str
    reason: RoomReason
    extendedData: _Names = _Names()


decode_room_change = msgspec.json.Decoder(RoomChange).decode


class RoomMembership:
    """Who is in which room, from onStateChanged: Logined puts a user in, Logout or
    ReconnectFailed (and onCallEnd) take them out."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, User]] = {}
        self._calls_of: dict[str, set[str]] = {}

    def apply(self, event: Event) -> None:
        if isinstance(event, StateChanged):
            self.apply_change(RoomChange(event.callID, event.recipient, event.reason,
                                         _Names(event.extendedData.get("user_name", ""))))
        elif isinstance(event, CallEnd):
            self._leave(event.callID, event.recipient)

    def apply_change(self, change: RoomChange) -> None:
        if change.reason is RoomReason.Logined:
            self._enter(change.callID, User(id=change.recipient, name=str(change.extendedData.user_name)))
        elif change.reason in (RoomReason.Logout, RoomReason.ReconnectFailed):
            self._leave(change.callID, change.recipient)

    def _enter(self, call_id: str, user: User) -> None:
        self._rooms.setdefault(call_id, {})[user.id] = user
        self._calls_of.setdefault(user.id, set()).add(call_id)

    def _leave(self, call_id: str, user_id: str) -> None:
        members = self._rooms.get(call_id)
        if members is not None:
            members.pop(user_id, None)
            if not members:
                del self._rooms[call_id]
        calls = self._calls_of.get(user_id)
        if calls is not None:
            calls.discard(call_id)
            if not calls:
                del self._calls_of[user_id]

    def members(self, call_id: str) -> tuple[User, ...]:
        return tuple(self._rooms.get(call_id, {}).values())

    def in_a_room(self, user_id: str) -> bool:
        return user_id in self._calls_of


async def follow_log(
    js: JetStreamContext,
    filter_subject: str,
    on_event: Callable[[Any], Awaitable[None] | None],
    *,
    caught_up: asyncio.Event | None = None,
    since: datetime | None = None,
    decode: Callable[[bytes], Any] = decode_event,
) -> None:
    """Feed every event on `filter_subject`, from the start of the log (or `since`), to `on_event`.

    An ordered push consumer (services.runtime.ordered: gap-free, re-created on loss) whose
    deliveries are decoded and applied on the client's read loop; an `on_event` returning a
    coroutine has it awaited before the next event. `caught_up` is set once the events
    present at start have been applied. `decode` turns a message into what `on_event`
    takes (a validated Event by default). Runs until cancelled.
    """

    def apply(subject: bytes, data: bytes, pending: int):
        try:
            result = on_event(decode(data))
        except Exception:
            log.exception("view could not apply an event on %s", subject.decode())
            result = None
        if result is not None and asyncio.iscoroutine(result):
            return finish(result, subject, pending)
        if pending == 0 and caught_up is not None and not caught_up.is_set():
            caught_up.set()
        return None

    async def finish(result, subject: bytes, pending: int) -> None:
        try:
            await result
        except Exception:
            log.exception("view could not apply an event on %s", subject.decode())
        if pending == 0 and caught_up is not None:
            caught_up.set()

    start_time = None
    if since is not None:
        start_time = since.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    stream = await js.find_stream_name_by_subject(filter_subject)
    consumer = OrderedConsumer(js._nc, js, stream, filter_subject, apply, start_time=start_time)
    try:
        info = await consumer.start()
        if caught_up is not None and info.num_pending == 0 and info.delivered.consumer_seq == 0:
            caught_up.set()  # nothing in the log for us; otherwise the last message says pending 0
        if asyncio.current_task().cancelling():
            # Python 3.11's wait_for (in nats-py's requests) drops a cancel that comes with the reply
            raise asyncio.CancelledError
        await asyncio.Future()  # until cancelled
    finally:
        await consumer.stop()


class LogFeed:
    """A local view fed from the log: `run` feeds it (a service task), `ready` waits until
    the events present at start have been applied (before the service answers commands)."""

    def __init__(self, js: JetStreamContext, filter_subject: str, on_event: Callable[[Any], Awaitable[None] | None],
                 since: datetime | None = None, decode: Callable[[bytes], Any] = decode_event):
        self.js = js
        self.filter_subject = filter_subject
        self.on_event = on_event
        self.since = since
        self.decode = decode
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        await follow_log(self.js, self.filter_subject, self.on_event, caught_up=self.caught_up, since=self.since,
                         decode=self.decode)

    async def ready(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.caught_up.wait(), timeout)


def room_membership_feed(runtime) -> tuple[RoomMembership, LogFeed]:
    """Who is in which room now, from the room service's onStateChanged of the last day."""
    rooms = RoomMembership()
    room_events = runtime.subjects.event_filter(category="room", callback="onStateChanged")
    return rooms, LogFeed(runtime.js, room_events, rooms.apply_change, since=runtime.uow.clock() - MEMBERSHIP_HORIZON,
                          decode=decode_room_change)
