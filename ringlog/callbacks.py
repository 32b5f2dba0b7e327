"""The callbacks of the kit's reference page, as Python handler holders with the same names.

    invitation_events = ZegoUIKitPrebuiltCallInvitationEvents(
        onIncomingCallReceived=lambda callID, caller, callType, callees, customData: ...,
        onOutgoingCallTimeout=lambda callID, callees, isVideoCall: ...,
    )
    events = ZegoUIKitPrebuiltCallEvents(
        onCallEnd=lambda event, defaultAction: defaultAction.call(),
        user=ZegoCallUserEvents(onEnter=lambda user: ...),
        room=ZegoCallRoomEvents(onStateChanged=lambda state: print(state.reason)),
        audioVideo=ZegoCallAudioVideoEvents(onRemoteCameraExceptionOccurred=lambda user, exception: ...),
    )

Each handler is called with the reference's parameters, in the reference's order, taken
from the event's fields (`CALLBACKS` below). Object parameters are the event itself:
onCallEnd's `event` (reason, kickerUserID), onStateChanged's `state` (reason, errorCode,
extendedData) and onHangUpConfirmation's `context` (confirmed) are the typed event, which
also carries callID, recipient, occurredAt ... Callbacks without parameters get none.
Handlers may be plain functions or coroutines.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional

from schemas.events import Event

Handler = Optional[Callable[..., Any]]

# Parameters that are not event fields.
EVENT_ITSELF = frozenset({"event", "state", "context"})
DEFAULT_ACTION = "defaultAction"


@dataclass(frozen=True)
class Callback:
    group: str  # where the handler sits: "invitation_events", "events", "events.user" ...
    category: str  # the subject's <category>
    name: str  # the documented callback name
    params: tuple[str, ...]  # the reference's parameter names, in order

    @property
    def has_default_action(self) -> bool:
        return DEFAULT_ACTION in self.params

    def arguments(self, event: Event, default_action: Any = None) -> tuple[Any, ...]:
        """The handler's positional arguments for one event."""
        values = []
        for param in self.params:
            if param in EVENT_ITSELF:
                values.append(event)
            elif param == DEFAULT_ACTION:
                values.append(default_action)
            else:
                values.append(getattr(event, param))
        return tuple(values)


_INVITATION, _CALL = "invitation_events", "events"
CALLBACKS: tuple[Callback, ...] = (
    # ZegoUIKitPrebuiltCallInvitationEvents (subjects ringlog.evt.invitation.*)
    Callback(_INVITATION, "invitation", "onError", ("error",)),
    Callback(_INVITATION, "invitation", "onInvitationUserStateChanged", ("userInfos",)),
    Callback(_INVITATION, "invitation", "onIncomingCallDeclineButtonPressed", ()),
    Callback(_INVITATION, "invitation", "onIncomingCallAcceptButtonPressed", ()),
    Callback(_INVITATION, "invitation", "onIncomingCallReceived", ("callID", "caller", "callType", "callees", "customData")),
    Callback(_INVITATION, "invitation", "onIncomingCallCanceled", ("callID", "caller", "customData")),
    Callback(_INVITATION, "invitation", "onIncomingCallTimeout", ("callID", "caller")),
    Callback(_INVITATION, "invitation", "onIncomingMissedCallClicked",
             ("callID", "caller", "callType", "callees", "customData", DEFAULT_ACTION)),
    Callback(_INVITATION, "invitation", "onIncomingMissedCallDialBackFailed", ()),
    Callback(_INVITATION, "invitation", "onOutgoingCallCancelButtonPressed", ()),
    Callback(_INVITATION, "invitation", "onOutgoingCallAccepted", ("callID", "callee")),
    Callback(_INVITATION, "invitation", "onOutgoingCallRejectedCauseBusy", ("callID", "callee", "customData")),
    Callback(_INVITATION, "invitation", "onOutgoingCallDeclined", ("callID", "callee", "customData")),
    Callback(_INVITATION, "invitation", "onOutgoingCallTimeout", ("callID", "callees", "isVideoCall")),
    # not on the reference page (the kit's current API has it): the whole invitation, for the caller
    Callback(_INVITATION, "invitation", "onOutgoingCallSent", ("callID", "caller", "callType", "callees", "customData")),
    # ZegoUIKitPrebuiltCallEvents (subjects ringlog.evt.call|user|room|audioVideo.*)
    Callback(_CALL, "call", "onError", ("error",)),
    Callback(_CALL, "call", "onHangUpConfirmation", ("context",)),
    Callback(_CALL, "call", "onCallEnd", ("event", DEFAULT_ACTION)),
    Callback("events.user", "user", "onEnter", ("user",)),
    Callback("events.user", "user", "onLeave", ("user",)),
    Callback("events.room", "room", "onStateChanged", ("state",)),
    Callback("events.audioVideo", "audioVideo", "onCameraStateChanged", ("isOpened",)),
    Callback("events.audioVideo", "audioVideo", "onFrontFacingCameraStateChanged", ("isFronted",)),
    Callback("events.audioVideo", "audioVideo", "onMicrophoneStateChanged", ("isOpened",)),
    Callback("events.audioVideo", "audioVideo", "onAudioOutputChanged", ("audioRoute",)),
    Callback("events.audioVideo", "audioVideo", "onLocalCameraExceptionOccurred", ("exception",)),
    Callback("events.audioVideo", "audioVideo", "onLocalMicrophoneExceptionOccurred", ("exception",)),
    Callback("events.audioVideo", "audioVideo", "onRemoteCameraExceptionOccurred", ("user", "exception")),
    Callback("events.audioVideo", "audioVideo", "onRemoteMicrophoneExceptionOccurred", ("user", "exception")),
)


@dataclass
class ZegoUIKitPrebuiltCallInvitationEvents:
    onError: Handler = None
    onInvitationUserStateChanged: Handler = None
    onIncomingCallDeclineButtonPressed: Handler = None
    onIncomingCallAcceptButtonPressed: Handler = None
    onIncomingCallReceived: Handler = None
    onIncomingCallCanceled: Handler = None
    onIncomingCallTimeout: Handler = None
    onIncomingMissedCallClicked: Handler = None
    onIncomingMissedCallDialBackFailed: Handler = None
    onOutgoingCallCancelButtonPressed: Handler = None
    onOutgoingCallAccepted: Handler = None
    onOutgoingCallRejectedCauseBusy: Handler = None
    onOutgoingCallDeclined: Handler = None
    onOutgoingCallTimeout: Handler = None
    onOutgoingCallSent: Handler = None


@dataclass
class ZegoCallUserEvents:
    onEnter: Handler = None
    onLeave: Handler = None


@dataclass
class ZegoCallRoomEvents:
    onStateChanged: Handler = None


@dataclass
class ZegoCallAudioVideoEvents:
    onCameraStateChanged: Handler = None
    onFrontFacingCameraStateChanged: Handler = None
    onMicrophoneStateChanged: Handler = None
    onAudioOutputChanged: Handler = None
    onLocalCameraExceptionOccurred: Handler = None
    onLocalMicrophoneExceptionOccurred: Handler = None
    onRemoteCameraExceptionOccurred: Handler = None
    onRemoteMicrophoneExceptionOccurred: Handler = None


@dataclass
class ZegoUIKitPrebuiltCallEvents:
    onError: Handler = None
    onHangUpConfirmation: Handler = None
    onCallEnd: Handler = None
    user: ZegoCallUserEvents = field(default_factory=ZegoCallUserEvents)
    room: ZegoCallRoomEvents = field(default_factory=ZegoCallRoomEvents)
    audioVideo: ZegoCallAudioVideoEvents = field(default_factory=ZegoCallAudioVideoEvents)


# Shorter Python names for the same classes.
InvitationEvents = ZegoUIKitPrebuiltCallInvitationEvents
CallEvents = ZegoUIKitPrebuiltCallEvents
UserEvents = ZegoCallUserEvents
RoomEvents = ZegoCallRoomEvents
AudioVideoEvents = ZegoCallAudioVideoEvents


def _holder(root: dict[str, Any], group: str) -> Any:
    head, *path = group.split(".")
    holder = root[head]
    for name in path:
        holder = getattr(holder, name)
    return holder


def registered(events: CallEvents, invitation_events: InvitationEvents) -> list[tuple[Callback, Callable[..., Any]]]:
    """Every (callback, handler) set on the two holders, in catalog order."""
    root = {"events": events, "invitation_events": invitation_events}
    found = []
    for callback in CALLBACKS:
        handler = getattr(_holder(root, callback.group), callback.name)
        if handler is not None:
            if not callable(handler):
                raise TypeError(f"{callback.group}.{callback.name} must be callable, not {type(handler).__name__}")
            found.append((callback, handler))
    return found


def holder_fields(cls: type) -> tuple[str, ...]:
    """The handler names a holder class offers (used by the tests against the catalog)."""
    return tuple(f.name for f in fields(cls) if f.name.startswith("on"))
