"""Finished calls decided by the services' own pure domains, as history for `bench scale`.

Each call of the mix is scripted command by command through `decide` / `fold` of the
invitation, room and device-monitor domains, so every event, `seq`, stream id,
`causationID` and command record is exactly what the services would have written:

- invitation events in the invitation store, stream = callID;
- room events in the room store, stream = callID;
- device events in the device store, stream = `services.device.domain.aggregate_key`;
- each command's `CommandRecord` beside its events (internal ones, such as a timeout or
  an abandon, under the services' own derived command ids, so a restart finds them).

Every call is finished (no invitation rings, no room has members) and every event lies
more than `HISTORY_GAP` in the past, so it is history to a starting service.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from schemas.commands import Accept, Cancel, Decline, DeviceReport, HangUp, Join, Kick, MissedCallClick, Received, Send
from schemas.enums import Source, ZegoCallInvitationType as CallType
from schemas.enums import ZegoUIKitAudioRoute as AudioRoute
from schemas.enums import ZegoUIKitDeviceExceptionType as DeviceException
from schemas.events import Event
from schemas.types import User
from services.device import domain as device_domain
from services.invitation import domain as invitation_domain
from services.room import domain as room_domain
from services.room.service import abandon_command_id
from services.runtime.domain import CommandRejected, Context, Stamper
from services.runtime.handling import internal_command_id, verb_of
from services.runtime.store import CommandRecord

HISTORY_GAP = timedelta(minutes=15)  # the newest preloaded event is at least this old
CALL_SPACING = timedelta(milliseconds=300)  # between the starts of two calls (they overlap)
LONGEST_CALL = timedelta(minutes=10)  # no scripted call lasts longer
EVENTS_PER_CALL = 18.4  # over the mix below (measured)

# The mix of finished calls, one entry per call in a cycle of 20 (a typical day: most calls
# are answered and hung up; some are declined, canceled, missed, busy, abandoned).
MIX = (
    "answered", "answered", "declined", "answered", "canceled", "answered", "missed", "answered",
    "answered", "busy", "answered", "group", "answered", "declined", "answered", "missed_clicked",
    "answered", "canceled_late_accept", "abandoned", "room_only",
)
USERS = 50_000  # the user pool the calls are drawn from


class UuidLike:
    """UUID-shaped unique ids from a seeded salt and a counter: the same seed gives the same
    history, ids included (tests rebuild a preload's events from its seed)."""

    def __init__(self, salt: int):
        self.salt = f"{salt & (2**64 - 1):016x}"
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        tail = f"{self.count:016x}"
        return f"{self.salt[:8]}-{self.salt[8:12]}-{self.salt[12:]}-{tail[:4]}-{tail[4:]}"


@dataclass
class Write:
    """One command's writes in one service: its stream's events and its record."""

    service: str
    stream: str
    events: list[Event]
    record: CommandRecord


@dataclass
class Call:
    """Decides one call's commands with the services' domains, as the services would."""

    call_id: str
    now: datetime
    rng: random.Random
    new_id: Callable[[], str]
    writes: list[Write] = field(default_factory=list)
    invitation: Any = None  # invitation_domain.InvitationState
    room: Any = None  # room_domain.RoomState
    devices: dict[str, Any] = field(default_factory=dict)  # user id -> device_domain.DeviceState

    def tick(self, low_ms: int, high_ms: int) -> None:
        self.now += timedelta(milliseconds=self.rng.randint(low_ms, high_ms))

    def _ctx(self) -> Context:
        return Context(now=self.now, new_id=self.new_id)

    def _write(self, service: str, stream: str, command: Any, events: list[Event], reply: dict[str, Any]) -> None:
        reply = {**reply, "eventIDs": [event.eventID for event in events]}
        self.writes.append(Write(service, stream, events, CommandRecord(
            commandID=command.commandID, verb=verb_of(command), reply=reply)))

    def _refused(self, service: str, stream: str, source: Source, version: int, command: Any,
                 refusal: CommandRejected) -> list[Event]:
        """A refusal as UnitOfWork.stage_refusal records it: onError for the actor, and the error."""
        stamp = Stamper(self._ctx(), source=source, call_id=self.call_id, causation_id=command.commandID,
                        version=version)
        events = [refusal.error_event(stamp, command.actor.id)] if refusal.records_error_event else []
        self.writes.append(Write(service, stream, events, CommandRecord(
            commandID=command.commandID, verb=verb_of(command), status=refusal.status, code=refusal.code,
            message=refusal.message)))
        return events

    # --- invitation ---------------------------------------------------------------------
    def invite(self, command: Any, reply: dict[str, Any] | None = None, **inputs) -> list[Event]:
        try:
            events = invitation_domain.decide(self.invitation, command, self._ctx(), **inputs)
        except CommandRejected as refusal:
            events = self._refused("invitation", self.call_id, Source.invitation, self.invitation.version,
                                   command, refusal)
            self.invitation = invitation_domain.fold(events, self.invitation)
            return events
        self.invitation = invitation_domain.fold(events, self.invitation)
        self._write("invitation", self.call_id, command, events, {"callID": self.call_id, **(reply or {})})
        return events

    def send(self, caller: User, callees: list[User], busy: frozenset[str] = frozenset()) -> None:
        self.invite(Send(commandID=self.new_id(), caller=caller, callees=callees, callID=self.call_id,
                         callType=CallType.videoCall if self.rng.random() < 0.6 else CallType.voiceCall,
                         customData=f'{{"topic":"call {self.call_id}"}}', timeoutSeconds=60), busy=busy)

    def received(self, callee: User) -> None:
        self.tick(100, 800)
        self.invite(Received(commandID=self.new_id(), callID=self.call_id, callee=callee))

    def accept(self, callee: User) -> None:
        self.tick(2000, 15000)
        self.invite(Accept(commandID=self.new_id(), callID=self.call_id, callee=callee))

    def decline(self, callee: User, reason: str = "decline") -> None:
        self.tick(2000, 15000)
        self.invite(Decline(commandID=self.new_id(), callID=self.call_id, callee=callee, reason=reason))

    def cancel(self, caller: User) -> None:
        self.tick(2000, 20000)
        self.invite(Cancel(commandID=self.new_id(), callID=self.call_id, caller=caller))

    def time_out(self) -> None:
        """The service's own Timeout at the invitation's deadline (its derived command id)."""
        self.now = max(self.now, invitation_domain.deadline(self.invitation)) + timedelta(milliseconds=20)
        command = invitation_domain.Timeout(commandID=internal_command_id("timeout", self.call_id),
                                            callID=self.call_id)
        self.invite(command)

    def missed_call_click(self, user: User) -> None:
        self.tick(30000, 120000)
        self.invite(MissedCallClick(commandID=self.new_id(), callID=self.call_id, user=user, dialBack=False),
                    {"dialBackCallID": None})

    # --- room ---------------------------------------------------------------------------
    def _room(self, command: Any, reply: dict[str, Any] | None = None) -> None:
        events = room_domain.decide(self.room, command, self._ctx())
        self.room = room_domain.fold(events, self.room)
        self._write("room", self.call_id, command, events, {"callID": self.call_id, **(reply or {})})

    def join(self, user: User) -> None:
        self.tick(300, 3000)
        command = Join(commandID=self.new_id(), callID=self.call_id, user=user)
        events = room_domain.decide(self.room, command, self._ctx())
        self.room = room_domain.fold(events, self.room)
        self._write("room", self.call_id, command, events, {
            "callID": self.call_id, "roomSessionID": self.room.room_session_id,
            "members": [member.id for member in room_domain.members(self.room)]})

    def hang_up(self, user: User) -> None:
        self.tick(5000, 300000)
        self._room(HangUp(commandID=self.new_id(), callID=self.call_id, user=user), {"confirmed": True})

    def kick(self, kicker: User, target: User) -> None:
        self.tick(5000, 120000)
        self._room(Kick(commandID=self.new_id(), callID=self.call_id, kicker=kicker, target=target))

    def abandon(self, expected: list[User]) -> None:
        """The room service's Abandon once the callees did not arrive (its derived command id)."""
        self.tick(10000, 10500)
        self._room(room_domain.Abandon(commandID=abandon_command_id(self.call_id), callID=self.call_id,
                                       expected=expected))

    # --- device -------------------------------------------------------------------------
    def report(self, user: User, **fields) -> None:
        self.tick(200, 5000)
        command = DeviceReport(commandID=self.new_id(), callID=self.call_id, user=user, **fields)
        state = self.devices.get(user.id)
        events = device_domain.decide(state, command, self._ctx(), room_members=room_domain.members(self.room))
        if not events:
            return  # a repeat writes nothing (and no record)
        self.devices[user.id] = device_domain.fold(events, state)
        self._write("device", device_domain.aggregate_key(self.call_id, user.id), command, events,
                    {"callID": self.call_id})

    def devices_on(self, user: User) -> None:
        self.report(user, camera=self.rng.random() < 0.7, microphone=True,
                    audioRoute=self.rng.choice((AudioRoute.speaker, AudioRoute.headphone, AudioRoute.bluetooth)))
        if self.rng.random() < 0.15:
            self.report(user, cameraException=self.rng.choice(
                (DeviceException.permissionNotGranted, DeviceException.deviceOccupied, DeviceException.zeroCaptureFps)))
        if self.rng.random() < 0.3:
            self.report(user, microphone=False)


def script(call: Call, kind: str, users: list[User]) -> None:
    """Decide one finished call of `kind` (one of MIX)."""
    rng = call.rng
    caller, *callees = rng.sample(users, 4 if kind == "group" else 2)
    callee = callees[0]
    if kind == "room_only":
        call.join(caller), call.join(callee), call.devices_on(caller), call.devices_on(callee)
        call.hang_up(rng.choice((caller, callee)))
        return
    call.send(caller, callees, busy=frozenset(user.id for user in callees) if kind == "busy" else frozenset())
    if kind == "busy":
        return
    for each in callees:
        call.received(each)
    if kind == "declined":
        call.decline(callee, reason="busy" if rng.random() < 0.2 else "decline")
    elif kind == "canceled":
        call.cancel(caller)
    elif kind == "canceled_late_accept":
        call.cancel(caller)
        call.accept(callee)  # too late: refused 409, recorded as onError for the callee
    elif kind in ("missed", "missed_clicked"):
        call.time_out()
        if kind == "missed_clicked":
            call.missed_call_click(callee)
    elif kind == "abandoned":
        call.accept(callee)
        call.join(caller)
        call.abandon([caller, callee])
    elif kind == "answered":
        call.accept(callee)
        call.join(caller), call.join(callee)
        call.devices_on(caller), call.devices_on(callee)
        call.hang_up(rng.choice((caller, callee)))
    elif kind == "group":
        call.accept(callees[0]), call.decline(callees[1])
        call.join(caller), call.join(callees[0])
        call.devices_on(caller), call.devices_on(callees[0])
        call.time_out()  # the third callee never answered
        if rng.random() < 0.5:
            call.kick(caller, callees[0])
        else:
            call.hang_up(caller)
    else:
        raise ValueError(f"unknown kind of call: {kind}")


class History:
    """Finished calls numbered 0..calls-1, each starting CALL_SPACING after the previous,
    the last ending more than HISTORY_GAP before `now`."""

    def __init__(self, calls: int, *, seed: int = 1, now: datetime | None = None, prefix: str = "hist",
                 users: int = USERS):
        self.calls = calls
        self.seed = seed
        now = now or datetime.now(timezone.utc)
        self.first_start = now - HISTORY_GAP - LONGEST_CALL - CALL_SPACING * calls
        self.prefix = f"{prefix}{seed}"
        self.users = [User(id=f"{self.prefix}u{index}", name=f"User {index}") for index in range(users)]
        self.new_id = UuidLike(random.Random(seed).getrandbits(64))

    def call(self, index: int) -> list[Write]:
        rng = random.Random(self.seed * 1_000_003 + index)
        call = Call(f"{self.prefix}-call{index}", self.first_start + CALL_SPACING * index, rng, self.new_id)
        script(call, MIX[index % len(MIX)], self.users)
        return call.writes

    def chunks(self, calls_per_chunk: int, start: int = 0) -> Iterator[list[Write]]:
        for first in range(start, self.calls, calls_per_chunk):
            writes: list[Write] = []
            for index in range(first, min(self.calls, first + calls_per_chunk)):
                writes += self.call(index)
            yield writes


def calls_for_events(events: int) -> int:
    """About how many calls of the mix make `events` events (at least one when events > 0)."""
    return 0 if events <= 0 else max(1, round(events / EVENTS_PER_CALL))
