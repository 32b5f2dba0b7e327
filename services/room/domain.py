"""The room service's pure domain: one aggregate per call (the room id is the call id).

`decide` turns Join, HangUp, Kick, ReportState and the internal Abandon into the kit's
user / room / call callbacks (ARCHITECTURE.md 3.1); `evolve` folds them back into a
`RoomState`. No I/O, no clock, no uuid: time and ids come in through `Context`.

How the log records membership (evolve reads only these, as RoomMembership in
services/runtime/views.py does):
- onStateChanged(Logined) -> joiner starts (or renews) a membership. Its extendedData is
  `{"room_session_id": ..., "user_name": ...}`: the name is written nowhere else for a
  lone first joiner. The session id stays until the room empties.
- onStateChanged(Logout) or (ReconnectFailed) -> user ends that user's membership.
Everything else (Logining, KickOut, other reported states, onEnter, onLeave, onCallEnd,
onHangUpConfirmation, onError) only bumps the version.
"""

from __future__ import annotations

from typing import Iterable

import msgspec

from schemas.commands import HangUp, Join, Kick, ReportState
from schemas.enums import Source, ZegoCallEndReason as EndReason, ZegoRoomStateChangedReason as RoomReason
from schemas.events import CallEnd, Enter, Error, Event, HangUpConfirmation, Leave, StateChanged
from schemas.types import User
from services.runtime.domain import CommandRejected, Context, KitCode, Stamper

__all__ = ["Abandon", "ExpectMembers", "RoomState", "REPORTABLE_REASONS", "decide", "evolve", "fold", "members"]

SESSION_KEY = "room_session_id"
USER_NAME_KEY = "user_name"
# What a client may report; Logining, Logined, Logout and KickOut are the server's own.
REPORTABLE_REASONS = frozenset({
    RoomReason.Reconnecting, RoomReason.Reconnected, RoomReason.ReconnectFailed,
    RoomReason.LoginFailed, RoomReason.LogoutFailed,
})
_LEAVING_REASONS = (RoomReason.Logout, RoomReason.ReconnectFailed)


class Abandon(msgspec.Struct, frozen=True, kw_only=True):
    """Internal: the abandon deadline of an accepted call passed; `expected[0]` is the caller."""

    commandID: str
    callID: str
    expected: list[User] = []


class ExpectMembers(msgspec.Struct, frozen=True, kw_only=True):
    """Internal: an invitation was accepted, so `expected` (caller first) should arrive.

    The event catalog has no event for an expectation, so the room does not record it
    (`decide` returns []). The service layer keeps it, learnt from the invitation log,
    and issues `abandon(...)` when its deadline passes.
    """

    commandID: str
    callID: str
    expected: list[User]
    acceptedAt: str

    def abandon(self, command_id: str) -> Abandon:
        return Abandon(commandID=command_id, callID=self.callID, expected=list(self.expected))


class RoomState(msgspec.Struct, frozen=True, kw_only=True):
    """Who is in one call's room now. Never mutated: evolve builds a new state (and dict)."""

    call_id: str
    version: int = 0  # seq of the last folded event
    members: dict[str, User] = {}  # user id -> User, in join order
    room_session_id: str | None = None  # set by the first joiner, cleared when the room empties
    arrived: frozenset[str] = frozenset()  # every user id that ever logged in (for Abandon)

    def others(self, user_id: str) -> tuple[User, ...]:
        return tuple(user for uid, user in self.members.items() if uid != user_id)


def members(state: RoomState | None) -> tuple[User, ...]:
    """The members now, in join order."""
    return tuple(state.members.values()) if state else ()


# --- decide ---------------------------------------------------------------------------

_KIT_CODES = {
    Join: KitCode.ROOM_LOGIN,
    HangUp: KitCode.ROOM_LOGOUT,
    Kick: KitCode.ROOM_KICK,
    ReportState: KitCode.ROOM_REPORT_STATE,
}


def _refuse(command, status: int, code: str, message: str) -> CommandRejected:
    method = f"{command.service}.{command.verb}"
    return CommandRejected(status, code, message, kit_code=_KIT_CODES[type(command)], method=method)


def _require_member(room: RoomState, command, user: User, path: str) -> User:
    if user.id not in room.members:
        raise _refuse(command, 403, "not_a_member", f"user {user.id} is not in room {room.call_id} - at `{path}`")
    return room.members[user.id]


def _stamper(ctx: Context, room: RoomState, command) -> Stamper:
    return Stamper(ctx, source=Source.room, call_id=room.call_id, causation_id=command.commandID, version=room.version)


def decide(state: RoomState | None, command, ctx: Context, *, hang_up_confirmed: bool = True) -> list[Event]:
    """The events of one command, or CommandRejected; `hang_up_confirmed` is the hook's answer."""
    if state is not None and state.call_id != command.callID:
        raise ValueError(f"command for call {command.callID!r} given the room of {state.call_id!r}")
    if isinstance(command, ExpectMembers):
        return []
    if isinstance(command, Abandon):
        return _abandon(state, command, ctx)
    room = state if state is not None else RoomState(call_id=command.callID)
    stamp = _stamper(ctx, room, command)
    if isinstance(command, Join):
        return _join(room, command, ctx, stamp)
    if not isinstance(command, (HangUp, Kick, ReportState)):
        raise TypeError(f"{type(command).__name__} is not a command of the room")
    if state is None:
        raise _refuse(command, 404, "unknown_room", f"room {command.callID} is unknown - at `$.callID`")
    if isinstance(command, HangUp):
        return _hang_up(room, command, stamp, hang_up_confirmed)
    if isinstance(command, Kick):
        return _kick(room, command, stamp)
    return _report_state(room, command, stamp)


def _join(room: RoomState, command: Join, ctx: Context, stamp: Stamper) -> list[Event]:
    joiner = command.user
    rejoining = joiner.id in room.members
    session = room.room_session_id if room.members and room.room_session_id else ctx.new_id()
    present = room.others(joiner.id)
    events: list[Event] = []
    if rejoining:  # the same user logs in elsewhere: the old session is kicked out
        events.append(stamp(StateChanged, joiner.id, reason=RoomReason.KickOut))
    logined = {SESSION_KEY: session, USER_NAME_KEY: joiner.name}
    events.append(stamp(StateChanged, joiner.id, reason=RoomReason.Logining))
    events.append(stamp(StateChanged, joiner.id, reason=RoomReason.Logined, extendedData=logined))
    events.extend(stamp(Enter, joiner.id, user=member) for member in present)
    if not rejoining:
        events.extend(stamp(Enter, member.id, user=joiner) for member in present)
    return events


def _departure(room: RoomState, leaver: User, stamp: Stamper) -> list[Event]:
    """onLeave to each remaining member; a last one left alone ends with remoteHangUp."""
    remaining = room.others(leaver.id)
    events: list[Event] = [stamp(Leave, member.id, user=leaver) for member in remaining]
    if len(remaining) == 1:
        last = remaining[0].id
        events.append(stamp(CallEnd, last, reason=EndReason.remoteHangUp))
        events.append(stamp(StateChanged, last, reason=RoomReason.Logout))
    return events


def _hang_up(room: RoomState, command: HangUp, stamp: Stamper, confirmed: bool) -> list[Event]:
    user = _require_member(room, command, command.user, "$.user.id")
    events: list[Event] = [stamp(HangUpConfirmation, user.id, confirmed=confirmed)]
    if not confirmed:
        return events
    events.append(stamp(StateChanged, user.id, reason=RoomReason.Logout))
    events.append(stamp(CallEnd, user.id, reason=EndReason.localHangUp))
    return events + _departure(room, user, stamp)


def _kick(room: RoomState, command: Kick, stamp: Stamper) -> list[Event]:
    kicker = _require_member(room, command, command.kicker, "$.kicker.id")
    if command.target.id == kicker.id:
        raise _refuse(command, 409, "cannot_kick_self", f"user {kicker.id} cannot kick themself - at `$.target.id`")
    target = room.members.get(command.target.id)
    if target is None:
        message = f"user {command.target.id} is not in room {room.call_id} - at `$.target.id`"
        raise _refuse(command, 409, "target_not_in_room", message)
    events: list[Event] = [
        stamp(CallEnd, target.id, reason=EndReason.kickOut, kickerUserID=kicker.id),
        stamp(StateChanged, target.id, reason=RoomReason.Logout),
    ]
    return events + _departure(room, target, stamp)


def _report_state(room: RoomState, command: ReportState, stamp: Stamper) -> list[Event]:
    reason = command.reason
    if reason not in REPORTABLE_REASONS:
        message = f"reason {reason.value} is set by the server, a client cannot report it - at `$.reason`"
        raise _refuse(command, 409, "reason_not_reportable", message)
    user = command.user
    if reason is not RoomReason.LoginFailed:
        user = _require_member(room, command, user, "$.user.id")
    data = dict(command.extendedData)
    event = stamp(StateChanged, user.id, reason=reason, errorCode=command.errorCode, extendedData=data)
    if reason is RoomReason.ReconnectFailed:
        return [event, *_departure(room, user, stamp)]
    return [event]


def _abandon(state: RoomState | None, command: Abandon, ctx: Context) -> list[Event]:
    """End the call for everyone present when no expected callee (anyone but the caller) ever arrived."""
    if state is None or not state.members:
        return []
    if any(user.id in state.arrived for user in command.expected[1:]):
        return []
    stamp = _stamper(ctx, state, command)
    events: list[Event] = []
    for member in state.members.values():
        events.append(stamp(CallEnd, member.id, reason=EndReason.abandoned))
        events.append(stamp(StateChanged, member.id, reason=RoomReason.Logout))
    return events


# --- evolve ---------------------------------------------------------------------------

_VERSION_ONLY = (Enter, Leave, CallEnd, HangUpConfirmation, Error)


def evolve(state: RoomState | None, event: Event) -> RoomState:
    """Fold one event; its seq must follow the state's version without a gap."""
    room = state if state is not None else RoomState(call_id=event.callID)
    if event.callID != room.call_id:
        raise ValueError(f"{event.type} of call {event.callID!r} folded into room {room.call_id!r}")
    if event.seq != room.version + 1:
        raise ValueError(f"{event.type} has seq {event.seq}, expected {room.version + 1} after version {room.version}")
    room = msgspec.structs.replace(room, version=event.seq)
    if isinstance(event, StateChanged):
        return _evolve_state(room, event)
    if not isinstance(event, _VERSION_ONLY):
        raise TypeError(f"{event.type} is not an event of the room")
    return room


def _evolve_state(room: RoomState, event: StateChanged) -> RoomState:
    if event.reason is RoomReason.Logined:
        user = User(id=event.recipient, name=str(event.extendedData.get(USER_NAME_KEY, "")))
        joined = {**room.members, user.id: user}  # a renewed login keeps its place
        session = event.extendedData.get(SESSION_KEY, room.room_session_id)
        return msgspec.structs.replace(room, members=joined, room_session_id=session, arrived=room.arrived | {user.id})
    if event.reason in _LEAVING_REASONS and event.recipient in room.members:
        left = {uid: user for uid, user in room.members.items() if uid != event.recipient}
        return msgspec.structs.replace(room, members=left, room_session_id=room.room_session_id if left else None)
    return room


def fold(events: Iterable[Event], state: RoomState | None = None) -> RoomState | None:
    """Evolve `state` through `events` in order; None when there are none and no state."""
    for event in events:
        state = evolve(state, event)
    return state
