"""Call metrics derived from the events a service commits.

`CommitObservers` is the UnitOfWork's `on_commit` hook: it wakes the relay, then hands
each committed group of events to the registered observers. Observers run on the hot
path, after the commit and before the commands are answered, so each is O(events),
does no I/O, and a failing one is logged and never breaks a commit.

The observers keep just enough state to count (ringing invitations, rooms with their
members); after a restart the service seeds them from what it recovered, without
counting again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Sequence

from schemas.enums import ZegoCallEndReason as EndReason
from schemas.enums import ZegoRoomStateChangedReason as RoomReason
from schemas.enums import ZegoSignalingPluginInvitationUserState as UserState
from schemas.events import (
    CallEnd, Event, LocalCameraExceptionOccurred, LocalMicrophoneExceptionOccurred, OutgoingCallAccepted,
    OutgoingCallCancelButtonPressed, OutgoingCallDeclined, OutgoingCallRejectedCauseBusy, OutgoingCallSent,
    OutgoingCallTimeout, StateChanged,
)
from services.runtime.call_metrics import DeviceMetrics, InvitationMetrics, RoomMetrics

log = logging.getLogger(__name__)
Observer = Callable[[Sequence[Event]], None]


def occurred_at(event: Event) -> datetime:
    return datetime.fromisoformat(event.occurredAt)


class CommitObservers:
    """`on_commit` for a UnitOfWork: always `first` (the relay's wake-up), then every observer."""

    def __init__(self, first: Callable[[], None] = lambda: None):
        self.first = first
        self.observers: list[Observer] = []

    def add(self, observer: Observer) -> None:
        self.observers.append(observer)

    def __call__(self, events: Sequence[Event]) -> None:
        self.first()
        for observer in self.observers:
            try:
                observer(events)
            except Exception:  # a metric must never fail a commit
                log.exception("commit observer %r failed", observer)


# --- invitation ------------------------------------------------------------------------

@dataclass
class _Ringing:
    sent_at: datetime
    ringing: set[str]
    answered: bool = False
    declined: int = 0


class InvitationOutcomes:
    """One outcome per invitation: answered at its first acceptance (with the setup time),
    otherwise, once no callee rings, canceled, missed (timeout), declined (a callee
    declined) or busy (every callee was busy)."""

    def __init__(self, metrics: InvitationMetrics):
        self.metrics = metrics
        self.calls: dict[str, _Ringing] = {}

    def seed(self, pending: Iterable) -> None:
        """Invitations still ringing after a restart (the service's recovered `InvitationState`s)."""
        for state in pending:
            ringing = {callee.user.id for callee in state.callees if callee.ringing}
            answered = any(callee.state is UserState.accepted for callee in state.callees)
            declined = sum(1 for callee in state.callees if callee.member and callee.state is UserState.rejected)
            self.calls[state.call_id] = _Ringing(state.sent_at, ringing, answered, declined)

    def observe(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, OutgoingCallSent):
                self.calls[event.callID] = _Ringing(occurred_at(event), {user.id for user in event.callees})
                continue
            call = self.calls.get(event.callID)
            if call is None:
                continue
            if isinstance(event, OutgoingCallAccepted):
                call.ringing.discard(event.callee.id)
                if not call.answered:
                    call.answered = True
                    self.metrics.outcomes["answered"].inc()
                    self.metrics.setup_time.observe(max(0.0, (occurred_at(event) - call.sent_at).total_seconds()))
            elif isinstance(event, OutgoingCallDeclined):
                call.ringing.discard(event.callee.id)
                call.declined += 1
            elif isinstance(event, OutgoingCallRejectedCauseBusy):
                call.ringing.discard(event.callee.id)
            elif isinstance(event, OutgoingCallCancelButtonPressed):
                self._end(event.callID, "canceled")
                continue
            elif isinstance(event, OutgoingCallTimeout):
                self._end(event.callID, "missed")
                continue
            else:
                continue
            if not call.ringing:
                self._end(event.callID, "declined" if call.declined else "busy")

    def _end(self, call_id: str, outcome: str) -> None:
        call = self.calls.pop(call_id, None)
        if call is not None and not call.answered:
            self.metrics.outcomes[outcome].inc()


# --- room ------------------------------------------------------------------------------

@dataclass
class _Room:
    started_at: datetime
    members: set[str] = field(default_factory=set)


_LEAVING = (RoomReason.Logout, RoomReason.ReconnectFailed)


class RoomSessions:
    """Rooms with their members (as the room domain folds onStateChanged), talk time when a
    room empties, and abandoned calls (onCallEnd reason abandoned, once per call)."""

    def __init__(self, metrics: RoomMetrics):
        self.metrics = metrics
        self.rooms: dict[str, _Room] = {}
        self.members = 0
        metrics.active_calls.set_function(lambda: len(self.rooms))
        metrics.members.set_function(lambda: self.members)

    def seed(self, events: Iterable[Event]) -> None:
        """Replay the stored onStateChanged events after a restart: rooms and members, no counts."""
        for event in events:
            if isinstance(event, StateChanged):
                self._apply(event)

    def observe(self, events: Sequence[Event]) -> None:
        abandoned: set[str] = set()
        for event in events:
            if isinstance(event, StateChanged):
                talk = self._apply(event)
                if talk is not None:
                    self.metrics.talk_time.observe(talk)
            elif isinstance(event, CallEnd) and event.reason is EndReason.abandoned:
                abandoned.add(event.callID)  # one Abandon decision: one onCallEnd per member
        for _ in abandoned:
            self.metrics.outcomes["abandoned"].inc()

    def _apply(self, event: StateChanged) -> float | None:
        """Fold one state change; the session's length in seconds when the room empties."""
        if event.reason is RoomReason.Logined:
            room = self.rooms.get(event.callID)
            if room is None:
                room = self.rooms[event.callID] = _Room(occurred_at(event))
            if event.recipient not in room.members:
                room.members.add(event.recipient)
                self.members += 1
        elif event.reason in _LEAVING:
            room = self.rooms.get(event.callID)
            if room is None or event.recipient not in room.members:
                return None
            room.members.discard(event.recipient)
            self.members -= 1
            if not room.members:
                del self.rooms[event.callID]
                return max(0.0, (occurred_at(event) - room.started_at).total_seconds())
        return None


# --- device ----------------------------------------------------------------------------

_DEVICES = {LocalCameraExceptionOccurred: "camera", LocalMicrophoneExceptionOccurred: "microphone"}


class DeviceExceptions:
    """Local camera/microphone exceptions by device and type (`unspecified`: reported without a type)."""

    def __init__(self, metrics: DeviceMetrics):
        self.metrics = metrics

    def observe(self, events: Sequence[Event]) -> None:
        for event in events:
            device = _DEVICES.get(type(event))
            if device is not None:
                kind = "unspecified" if event.exception is None else getattr(event.exception, "value", event.exception)
                self.metrics.exceptions.labels(device, kind).inc()
