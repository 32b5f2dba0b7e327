"""One call's read model, folded from the call's events in log order. Pure: no I/O, no clock.

What the log says, and how it is read here:
- invitation events give the caller, the callees and each callee's invitation state
  (inviting, received, accepted, rejected, beCanceled, timeout), `busy` for a callee
  refused with onOutgoingCallRejectedCauseBusy, callType, customData and timeoutSeconds;
- room membership comes only from onStateChanged of the user concerned: Logined puts
  the user in (extendedData carries room_session_id and user_name), Logout and
  ReconnectFailed take them out. onEnter/onLeave are fan-out copies and change nothing;
- onCallEnd records an end reason per user (kickOut with the kicker; abandoned marks
  the call abandoned).

Derived values: `active` while a callee still rings or anyone is in the room;
`endedAt` when the call stops being active; `setupSeconds` from onOutgoingCallSent to
the first accept; `talkSeconds` is the time the room held at least two members;
`outcome` is answered / declined / busy / canceled / missed / abandoned once the
invitation is decided (None while it rings, and for a room entered without invitation).
A callee's call is *missed* when their invitation timed out (the calls the kit lets
them open with onIncomingMissedCallClicked).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas import events as ev
from schemas.enums import ZegoRoomStateChangedReason as RoomReason

RINGING = frozenset({"inviting", "received"})
LEAVING = (RoomReason.Logout, RoomReason.ReconnectFailed)


class Party(msgspec.Struct, kw_only=True):
    id: str
    name: str = ""


class Callee(msgspec.Struct, kw_only=True):
    id: str
    name: str = ""
    state: str = "inviting"  # ZegoSignalingPluginInvitationUserState value
    busy: bool = False
    received: bool = False  # reached by onIncomingCallReceived
    answeredAt: str | None = None


class Stay(msgspec.Struct, kw_only=True):
    """One user's time in the room: Logined until Logout or ReconnectFailed."""

    userID: str
    name: str = ""
    joinedAt: str
    leftAt: str | None = None
    leftReason: str | None = None
    roomSessionID: str | None = None


class EndReason(msgspec.Struct, kw_only=True):
    userID: str
    reason: str
    kickerUserID: str | None = None
    at: str


class CallView(msgspec.Struct, kw_only=True):
    callID: str
    firstSeq: int  # stream sequence of the call's first event
    lastSeq: int
    events: int = 0
    caller: Party | None = None
    callees: list[Callee] = []
    callType: str | None = None
    customData: str = ""
    timeoutSeconds: int | None = None
    canceled: bool = False
    abandoned: bool = False
    outcome: str | None = None
    active: bool = False
    roomSessionID: str | None = None
    members: list[Party] = []  # in the room now, in join order
    stays: list[Stay] = []  # every stay in the room, in join order
    endReasons: list[EndReason] = []
    startedAt: str
    sentAt: str | None = None
    firstAcceptedAt: str | None = None
    endedAt: str | None = None
    lastEventAt: str
    setupSeconds: float | None = None
    talkSeconds: float = 0.0
    talkingSince: str | None = None

    def callee(self, user_id: str, name: str = "") -> Callee:
        for callee in self.callees:
            if callee.id == user_id:
                return callee
        callee = Callee(id=user_id, name=name)
        self.callees.append(callee)
        return callee


def fold_call(view: CallView | None, event: ev.Event, seq: int) -> CallView:
    """Fold one event (stream sequence `seq`) into the call's view; returns the view."""
    if view is None:
        view = CallView(callID=event.callID, firstSeq=seq, lastSeq=seq, startedAt=event.occurredAt,
                        lastEventAt=event.occurredAt)
    view.events += 1
    view.lastSeq = seq
    if event.occurredAt > view.lastEventAt:
        view.lastEventAt = event.occurredAt
    handler = _HANDLERS.get(type(event))
    if handler is not None and handler(view, event) is not False:
        _settle(view, event.occurredAt)
    return view


def seconds_between(start: str, end: str) -> float:
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


# --- invitation -------------------------------------------------------------------------


def _sent(view: CallView, event: ev.OutgoingCallSent) -> None:
    view.caller = Party(id=event.caller.id, name=event.caller.name)
    known = {callee.id: callee for callee in view.callees}
    view.callees = [known.pop(user.id, None) or Callee(id=user.id, name=user.name) for user in event.callees]
    view.callees += known.values()  # named by an event before onOutgoingCallSent (out of order)
    view.callType = event.callType.value
    view.customData = event.customData
    view.timeoutSeconds = event.timeoutSeconds
    view.sentAt = event.occurredAt
    view.startedAt = min(view.startedAt, event.occurredAt)


def _set_state(view: CallView, user_id: str, name: str, state: str, at: str) -> None:
    if view.caller is not None and user_id == view.caller.id:
        return
    callee = view.callee(user_id, name)
    callee.state = state
    if state in ("accepted", "rejected") and callee.answeredAt is None:
        callee.answeredAt = at
    if state == "accepted" and (view.firstAcceptedAt is None or at < view.firstAcceptedAt):
        view.firstAcceptedAt = at


def _received(view: CallView, event: ev.IncomingCallReceived) -> None:
    view.callee(event.recipient).received = True


def _busy(view: CallView, event: ev.OutgoingCallRejectedCauseBusy) -> None:
    view.callee(event.callee.id, event.callee.name).busy = True
    _set_state(view, event.callee.id, event.callee.name, "rejected", event.occurredAt)


def _user_states(view: CallView, event: ev.InvitationUserStateChanged) -> None:
    for info in event.userInfos:
        _set_state(view, info.userID, "", info.state.value, event.occurredAt)


def _by_recipient(state: str):
    def handle(view: CallView, event: ev.Event) -> None:
        _set_state(view, event.recipient, "", state, event.occurredAt)

    return handle


def _by_callee(state: str):
    def handle(view: CallView, event) -> None:
        _set_state(view, event.callee.id, event.callee.name, state, event.occurredAt)

    return handle


def _cancel_pressed(view: CallView, event: ev.OutgoingCallCancelButtonPressed) -> None:
    view.canceled = True


def _outgoing_timeout(view: CallView, event: ev.OutgoingCallTimeout) -> None:
    for user in event.callees:
        _set_state(view, user.id, user.name, "timeout", event.occurredAt)


# --- room and call ----------------------------------------------------------------------


def _room_state(view: CallView, event: ev.StateChanged):
    user_id, at = event.recipient, event.occurredAt
    before = len(view.members)
    if event.reason is RoomReason.Logined:
        session = event.extendedData.get("room_session_id")
        if session is not None:
            view.roomSessionID = str(session)
        if any(member.id == user_id for member in view.members):
            return False  # a renewed login: the stay goes on
        name = str(event.extendedData.get("user_name", ""))
        view.members.append(Party(id=user_id, name=name))
        view.stays.append(Stay(userID=user_id, name=name, joinedAt=at, roomSessionID=view.roomSessionID))
    elif event.reason in LEAVING:
        if not any(member.id == user_id for member in view.members):
            return False
        view.members = [member for member in view.members if member.id != user_id]
        for stay in view.stays:
            if stay.userID == user_id and stay.leftAt is None:
                stay.leftAt, stay.leftReason = at, event.reason.value
    else:
        return False
    _count_talk(view, before, len(view.members), at)


def _count_talk(view: CallView, before: int, after: int, at: str) -> None:
    if before < 2 <= after:
        view.talkingSince = at
    elif after < 2 <= before and view.talkingSince is not None:
        view.talkSeconds = round(view.talkSeconds + seconds_between(view.talkingSince, at), 3)
        view.talkingSince = None


def _call_end(view: CallView, event: ev.CallEnd) -> None:
    view.endReasons.append(EndReason(userID=event.recipient, reason=event.reason.value,
                                     kickerUserID=event.kickerUserID, at=event.occurredAt))
    if event.reason.value == "abandoned":
        view.abandoned = True


# --- derived values -----------------------------------------------------------------------


def _settle(view: CallView, at: str) -> None:
    active = bool(view.members)
    if not active:
        for callee in view.callees:
            if callee.state in RINGING:
                active = True
                break
    if active:
        view.endedAt = None
    elif view.active or view.endedAt is None:
        view.endedAt = at
    view.active = active


def finish(view: CallView) -> CallView:
    """Fill in the values that depend only on the state reached (once per batch, not per event)."""
    view.outcome = outcome(view, any(callee.state in RINGING for callee in view.callees))
    if view.sentAt is not None and view.firstAcceptedAt is not None:
        view.setupSeconds = seconds_between(view.sentAt, view.firstAcceptedAt)
    return view


def outcome(view: CallView, ringing: bool) -> str | None:
    if view.abandoned:
        return "abandoned"
    if not view.callees:
        return None
    states = {callee.state for callee in view.callees}
    if "accepted" in states:
        return "answered"
    if view.canceled or "beCanceled" in states:
        return "canceled"
    if ringing:
        return None
    if "timeout" in states:
        return "missed"
    if all(callee.busy for callee in view.callees):
        return "busy"
    return "declined"


def participants(view: CallView) -> list[tuple[str, str, str, int, int]]:
    """(user_id, call_id, role, first_seq, missed) for every user the call concerned."""
    rows: dict[str, tuple[str, str, str, int, int]] = {}
    if view.caller is not None:
        rows[view.caller.id] = (view.caller.id, view.callID, "caller", view.firstSeq, 0)
    for callee in view.callees:
        rows.setdefault(callee.id, (callee.id, view.callID, "callee", view.firstSeq, int(callee.state == "timeout")))
    for stay in view.stays:
        rows.setdefault(stay.userID, (stay.userID, view.callID, "member", view.firstSeq, 0))
    return list(rows.values())


_HANDLERS = {
    ev.OutgoingCallSent: _sent,
    ev.IncomingCallReceived: _received,
    ev.OutgoingCallRejectedCauseBusy: _busy,
    ev.InvitationUserStateChanged: _user_states,
    ev.IncomingCallAcceptButtonPressed: _by_recipient("accepted"),
    ev.OutgoingCallAccepted: _by_callee("accepted"),
    ev.IncomingCallDeclineButtonPressed: _by_recipient("rejected"),
    ev.OutgoingCallDeclined: _by_callee("rejected"),
    ev.OutgoingCallCancelButtonPressed: _cancel_pressed,
    ev.IncomingCallCanceled: _by_recipient("beCanceled"),
    ev.IncomingCallTimeout: _by_recipient("timeout"),
    ev.OutgoingCallTimeout: _outgoing_timeout,
    ev.StateChanged: _room_state,
    ev.CallEnd: _call_end,
}
