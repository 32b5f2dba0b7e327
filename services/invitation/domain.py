"""The invitation service's rules: who rings, who answers, who is told (ARCHITECTURE.md 3.1).

Pure: no I/O, no clock, no uuid (time and ids come in through `Context`). The state is
rebuilt only from the events written, so every transition is visible in the log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable, Union

import msgspec

from schemas.commands import Accept, Cancel, Decline, MissedCallClick, Received, Send
from schemas.enums import Source, ZegoCallInvitationType
from schemas.enums import ZegoSignalingPluginInvitationUserState as UserState
from schemas.events import (
    Error, Event, IncomingCallAcceptButtonPressed, IncomingCallCanceled, IncomingCallDeclineButtonPressed,
    IncomingCallReceived, IncomingCallTimeout, IncomingMissedCallClicked, IncomingMissedCallDialBackFailed,
    InvitationUserStateChanged, OutgoingCallAccepted, OutgoingCallCancelButtonPressed, OutgoingCallDeclined,
    OutgoingCallRejectedCauseBusy, OutgoingCallSent, OutgoingCallTimeout,
)
from schemas.types import InvitationUserInfo, User
from services.runtime.domain import CommandRejected, Context, KitCode, Stamper, parse_timestamp

RINGING = frozenset({UserState.inviting, UserState.received})


class Timeout(msgspec.Struct, frozen=True, kw_only=True):
    """Internal command, issued by the service when the invitation's deadline passes."""
    commandID: str
    callID: str


InvitationCommand = Union[Send, Accept, Decline, Cancel, Received, MissedCallClick, Timeout]


class InvitationStatus(str, Enum):
    ringing = "ringing"  # at least one callee still rings
    canceled = "canceled"  # the caller canceled while callees rang
    accepted = "accepted"  # nobody rings and at least one callee accepted
    timeout = "timeout"  # nobody accepted and at least one callee did not answer in time
    rejected = "rejected"  # every callee declined or was busy


class CalleeState(msgspec.Struct, frozen=True, kw_only=True):
    user: User
    state: UserState = UserState.inviting
    member: bool = False  # got onIncomingCallReceived; False for a callee busy at send

    @property
    def ringing(self) -> bool:
        return self.state in RINGING


class InvitationState(msgspec.Struct, frozen=True, kw_only=True):
    version: int  # seq of the last folded event
    call_id: str
    caller: User
    callees: tuple[CalleeState, ...]  # in the order of the Send command
    callType: ZegoCallInvitationType
    customData: str
    timeoutSeconds: int
    sent_at: datetime

    def callee(self, user_id: str) -> CalleeState | None:
        return next((callee for callee in self.callees if callee.user.id == user_id), None)

    @property
    def ringing(self) -> tuple[CalleeState, ...]:
        return tuple(callee for callee in self.callees if callee.ringing)

    @property
    def members(self) -> list[str]:
        """The caller and every callee the invitation reached (busy-at-send callees are not members)."""
        return [self.caller.id] + [callee.user.id for callee in self.callees if callee.member]

    @property
    def status(self) -> InvitationStatus:
        states = {callee.state for callee in self.callees}
        if states & RINGING:
            return InvitationStatus.ringing
        for state, status in ((UserState.beCanceled, InvitationStatus.canceled),
                              (UserState.accepted, InvitationStatus.accepted),
                              (UserState.timeout, InvitationStatus.timeout)):
            if state in states:
                return status
        return InvitationStatus.rejected


def deadline(state: InvitationState) -> datetime | None:
    """When the Timeout command is due; None once no callee rings."""
    return state.sent_at + timedelta(seconds=state.timeoutSeconds) if state.ringing else None


def engaged_users(state: InvitationState) -> frozenset[str]:
    """Users this invitation makes busy: callees still ringing, and the caller while any rings."""
    ringing = {callee.user.id for callee in state.ringing}
    return frozenset(ringing | {state.caller.id}) if ringing else frozenset()


# --- decide --------------------------------------------------------------------------

_KIT = {
    Send: (KitCode.INVITATION_SEND, "sendInvitation"),
    Accept: (KitCode.INVITATION_ACCEPT, "acceptInvitation"),
    Decline: (KitCode.INVITATION_REFUSE, "refuseInvitation"),
    Cancel: (KitCode.INVITATION_CANCEL, "cancelInvitation"),
    Received: (KitCode.INVITATION_RECEIVED, "receiveInvitation"),
    MissedCallClick: (KitCode.INVITATION_MISSED_CALL, "clickMissedCall"),
    Timeout: (KitCode.INVITATION_SEND, "invitationTimeout"),
}


def _refuse(command: InvitationCommand, status: int, code: str, message: str) -> CommandRejected:
    kit_code, method = _KIT[type(command)]
    return CommandRejected(status, code, message, kit_code=kit_code, method=method)


def decide(state: InvitationState | None, command: InvitationCommand, ctx: Context, *,
           busy: frozenset[str] = frozenset()) -> list[Event]:
    if isinstance(command, Send):
        if state is not None:
            raise _refuse(command, 409, "call_exists", f"call {command.callID} already exists - at `$.callID`")
        return _send(command, _stamper(ctx, command, command.callID, 0), busy)
    if state is None:
        raise _refuse(command, 404, "unknown_call", f"call {command.callID} does not exist - at `$.callID`")
    stamp = _stamper(ctx, command, state.call_id, state.version)
    return _HANDLERS[type(command)](state, command, stamp)


def _stamper(ctx: Context, command: InvitationCommand, call_id: str, version: int) -> Stamper:
    return Stamper(ctx, source=Source.invitation, call_id=call_id, causation_id=command.commandID, version=version)


def _send(command: Send, stamp: Stamper, busy: frozenset[str]) -> list[Event]:
    caller, callees = command.caller, list(command.callees)
    events: list[Event] = [stamp(OutgoingCallSent, caller.id, caller=caller, callees=callees,
                                 callType=command.callType, customData=command.customData,
                                 timeoutSeconds=command.timeoutSeconds)]
    events += [stamp(IncomingCallReceived, callee.id, caller=caller, callType=command.callType,
                     callees=callees, customData=command.customData)
               for callee in callees if callee.id not in busy]
    events += [stamp(OutgoingCallRejectedCauseBusy, caller.id, callee=callee)
               for callee in callees if callee.id in busy]
    return events


def _received(state: InvitationState, command: Received, stamp: Stamper) -> list[Event]:
    callee = _callee_of(state, command, command.callee, "`$.callee.id`")
    if callee.state is not UserState.inviting:
        return []
    return _tell_members(state, stamp, [callee], UserState.received)


def _accept(state: InvitationState, command: Accept, stamp: Stamper) -> list[Event]:
    callee = _ringing_callee(state, command, command.callee)
    return [stamp(IncomingCallAcceptButtonPressed, callee.user.id),
            stamp(OutgoingCallAccepted, state.caller.id, callee=callee.user, customData=command.customData),
            *_tell_members(state, stamp, [callee], UserState.accepted)]


def _decline(state: InvitationState, command: Decline, stamp: Stamper) -> list[Event]:
    callee = _ringing_callee(state, command, command.callee)
    if command.reason == "busy":
        return [stamp(OutgoingCallRejectedCauseBusy, state.caller.id, callee=callee.user,
                      customData=command.customData),
                *_tell_members(state, stamp, [callee], UserState.rejected, extended_data="busy")]
    return [stamp(IncomingCallDeclineButtonPressed, callee.user.id),
            stamp(OutgoingCallDeclined, state.caller.id, callee=callee.user, customData=command.customData),
            *_tell_members(state, stamp, [callee], UserState.rejected)]


def _cancel(state: InvitationState, command: Cancel, stamp: Stamper) -> list[Event]:
    if command.caller.id != state.caller.id:
        raise _refuse(command, 403, "not_the_caller",
                      f"user {command.caller.id} is not the caller of call {state.call_id} - at `$.caller.id`")
    if any(callee.state is UserState.accepted for callee in state.callees):
        raise _refuse(command, 409, "already_accepted",
                      f"call {state.call_id} was already accepted and can no longer be canceled - at `$.callID`")
    if not state.ringing:
        raise _refuse(command, 409, "invitation_over",
                      f"no callee of call {state.call_id} is still ringing - at `$.callID`")
    cancelled = [InvitationUserInfo(userID=state.caller.id, state=UserState.cancelled)]
    events: list[Event] = [stamp(OutgoingCallCancelButtonPressed, state.caller.id)]
    for callee in state.ringing:
        events += [stamp(IncomingCallCanceled, callee.user.id, caller=state.caller, customData=command.customData),
                   stamp(InvitationUserStateChanged, callee.user.id, userInfos=cancelled)]
    return events


def _timeout(state: InvitationState, command: Timeout, stamp: Stamper) -> list[Event]:
    timed_out = state.ringing
    if not timed_out:
        return []
    return [*(stamp(IncomingCallTimeout, callee.user.id, caller=state.caller) for callee in timed_out),
            stamp(OutgoingCallTimeout, state.caller.id, callees=[callee.user for callee in timed_out],
                  isVideoCall=state.callType is ZegoCallInvitationType.videoCall),
            *_tell_members(state, stamp, timed_out, UserState.timeout)]


def _missed_call_click(state: InvitationState, command: MissedCallClick, stamp: Stamper) -> list[Event]:
    callee = _callee_of(state, command, command.user, "`$.user.id`")
    if callee.state is not UserState.timeout:
        raise _refuse(command, 409, "not_a_missed_call",
                      f"call {state.call_id} is not a missed call of user {callee.user.id} - at `$.user.id`")
    invited = [each.user for each in state.callees]
    return [stamp(IncomingMissedCallClicked, callee.user.id, caller=state.caller, callType=state.callType,
                  callees=invited, customData=state.customData, dialBack=command.dialBack)]


_HANDLERS = {Received: _received, Accept: _accept, Decline: _decline, Cancel: _cancel,
             Timeout: _timeout, MissedCallClick: _missed_call_click}


def _callee_of(state: InvitationState, command: InvitationCommand, user: User, at: str) -> CalleeState:
    callee = state.callee(user.id)
    if callee is None:
        raise _refuse(command, 403, "not_a_callee", f"user {user.id} is not invited to call {state.call_id} - at {at}")
    return callee


_NOT_RINGING = {
    UserState.beCanceled: ("call_canceled", "call {call} was canceled by the caller"),
    UserState.timeout: ("invitation_timed_out", "the invitation of callee {user} to call {call} timed out"),
    UserState.accepted: ("already_answered", "callee {user} already accepted call {call}"),
    UserState.rejected: ("already_answered", "callee {user} already rejected call {call}"),
}


def _ringing_callee(state: InvitationState, command: Accept | Decline, user: User) -> CalleeState:
    callee = _callee_of(state, command, user, "`$.callee.id`")
    if not callee.ringing:
        code, message = _NOT_RINGING[callee.state]
        raise _refuse(command, 409, code, message.format(user=user.id, call=state.call_id) + " - at `$.callee.id`")
    return callee


def _tell_members(state: InvitationState, stamp: Stamper, subjects: Iterable[CalleeState],
                  new_state: UserState, *, extended_data: str = "") -> list[Event]:
    """onInvitationUserStateChanged to every member except the callees whose state changed."""
    subject_ids = [callee.user.id for callee in subjects]
    infos = [InvitationUserInfo(userID=user_id, state=new_state, extendedData=extended_data) for user_id in subject_ids]
    return [stamp(InvitationUserStateChanged, member, userInfos=infos)
            for member in state.members if member not in subject_ids]


# --- evolve --------------------------------------------------------------------------


def evolve(state: InvitationState | None, event: Event) -> InvitationState:
    if isinstance(event, OutgoingCallSent):
        return _started(event)
    if state is None:
        raise ValueError(f"{event.type} (seq {event.seq}) of call {event.callID} comes before onOutgoingCallSent")
    updates = _callee_updates(state, event)
    callees = tuple(msgspec.structs.replace(callee, **updates[callee.user.id]) if callee.user.id in updates else callee
                    for callee in state.callees)
    return msgspec.structs.replace(state, version=event.seq, callees=callees)


def fold(events: Iterable[Event], state: InvitationState | None = None) -> InvitationState | None:
    for event in events:
        state = evolve(state, event)
    return state


def _started(event: OutgoingCallSent) -> InvitationState:
    return InvitationState(version=event.seq, call_id=event.callID, caller=event.caller,
                           callees=tuple(CalleeState(user=user) for user in event.callees),
                           callType=event.callType, customData=event.customData,
                           timeoutSeconds=event.timeoutSeconds, sent_at=parse_timestamp(event.occurredAt))


def _callee_updates(state: InvitationState, event: Event) -> dict[str, dict]:
    """Field changes per callee id that one event records."""
    match event:
        case IncomingCallReceived():
            return {event.recipient: {"member": True}}
        case IncomingCallAcceptButtonPressed():
            return {event.recipient: {"state": UserState.accepted}}
        case OutgoingCallAccepted():
            return {event.callee.id: {"state": UserState.accepted}}
        case IncomingCallDeclineButtonPressed():
            return {event.recipient: {"state": UserState.rejected}}
        case OutgoingCallDeclined() | OutgoingCallRejectedCauseBusy():
            return {event.callee.id: {"state": UserState.rejected}}
        case IncomingCallCanceled():
            return {event.recipient: {"state": UserState.beCanceled}}
        case IncomingCallTimeout():
            return {event.recipient: {"state": UserState.timeout}}
        case OutgoingCallTimeout():
            return {user.id: {"state": UserState.timeout} for user in event.callees}
        case InvitationUserStateChanged():  # the caller's "cancelled" is recorded by IncomingCallCanceled
            return {info.userID: {"state": info.state} for info in event.userInfos if info.userID != state.caller.id}
        case (OutgoingCallCancelButtonPressed() | IncomingMissedCallClicked()
              | IncomingMissedCallDialBackFailed() | Error()):
            return {}
    raise ValueError(f"{event.type} is not an invitation event (call {event.callID})")
