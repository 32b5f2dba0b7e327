"""Every callback event of the kit as an immutable msgspec Struct (ARCHITECTURE.md section 3).

The wire name of each event is its `type` tag, the documented callback name verbatim.
Attribute names are the wire names, so a field reads the same in Python and in JSON.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

import msgspec

from schemas.enums import (
    Source,
    ZegoCallEndReason,
    ZegoCallInvitationType,
    ZegoRoomStateChangedReason,
    ZegoUIKitAudioRoute,
    ZegoUIKitDeviceExceptionType,
)
from schemas.types import (
    CallID,
    CommandID,
    CustomData,
    InvitationUserInfo,
    Timestamp,
    TimeoutSeconds,
    User,
    UserID,
    ZegoUIKitError,
)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """The envelope every event carries."""

    category: ClassVar[str]
    callback: ClassVar[str] = ""  # the tag, kept as a plain class attribute (reading __struct_config__ builds an object)

    eventID: str
    callID: CallID
    recipient: UserID
    seq: int
    occurredAt: Timestamp
    source: Source
    causationID: CommandID

    @property
    def type(self) -> str:
        return self.callback or type(self).__struct_config__.tag


def _event(category: str):
    def register(cls):
        cls.category = category
        cls.callback = cls.__struct_config__.tag
        return cls

    return register


# --- invitation -------------------------------------------------------------------


@_event("invitation")
class OutgoingCallSent(Event, frozen=True, tag="onOutgoingCallSent"):
    caller: User
    callees: list[User]
    callType: ZegoCallInvitationType
    customData: CustomData = ""
    timeoutSeconds: TimeoutSeconds = 60


@_event("invitation")
class IncomingCallReceived(Event, frozen=True, tag="onIncomingCallReceived"):
    caller: User
    callType: ZegoCallInvitationType
    callees: list[User]
    customData: CustomData = ""


@_event("invitation")
class OutgoingCallRejectedCauseBusy(Event, frozen=True, tag="onOutgoingCallRejectedCauseBusy"):
    callee: User
    customData: CustomData = ""


@_event("invitation")
class InvitationUserStateChanged(Event, frozen=True, tag="onInvitationUserStateChanged"):
    userInfos: list[InvitationUserInfo]


@_event("invitation")
class IncomingCallAcceptButtonPressed(Event, frozen=True, tag="onIncomingCallAcceptButtonPressed"):
    pass


@_event("invitation")
class OutgoingCallAccepted(Event, frozen=True, tag="onOutgoingCallAccepted"):
    callee: User
    customData: CustomData = ""


@_event("invitation")
class IncomingCallDeclineButtonPressed(Event, frozen=True, tag="onIncomingCallDeclineButtonPressed"):
    pass


@_event("invitation")
class OutgoingCallDeclined(Event, frozen=True, tag="onOutgoingCallDeclined"):
    callee: User
    customData: CustomData = ""


@_event("invitation")
class OutgoingCallCancelButtonPressed(Event, frozen=True, tag="onOutgoingCallCancelButtonPressed"):
    pass


@_event("invitation")
class IncomingCallCanceled(Event, frozen=True, tag="onIncomingCallCanceled"):
    caller: User
    customData: CustomData = ""


@_event("invitation")
class IncomingCallTimeout(Event, frozen=True, tag="onIncomingCallTimeout"):
    caller: User


@_event("invitation")
class OutgoingCallTimeout(Event, frozen=True, tag="onOutgoingCallTimeout"):
    callees: list[User]
    isVideoCall: bool


@_event("invitation")
class IncomingMissedCallClicked(Event, frozen=True, tag="onIncomingMissedCallClicked"):
    caller: User
    callType: ZegoCallInvitationType
    callees: list[User]
    customData: CustomData = ""
    dialBack: bool = True


@_event("invitation")
class IncomingMissedCallDialBackFailed(Event, frozen=True, tag="onIncomingMissedCallDialBackFailed"):
    reason: str = ""


@_event("call")  # "invitation" when the invitation service writes it: see category_of
class Error(Event, frozen=True, tag="onError"):
    error: ZegoUIKitError


# --- call ----------------------------------------------------------------------------


@_event("call")
class HangUpConfirmation(Event, frozen=True, tag="onHangUpConfirmation"):
    confirmed: bool


@_event("call")
class CallEnd(Event, frozen=True, tag="onCallEnd"):
    reason: ZegoCallEndReason
    kickerUserID: UserID | None = None


# --- user ----------------------------------------------------------------------------


@_event("user")
class Enter(Event, frozen=True, tag="onEnter"):
    user: User


@_event("user")
class Leave(Event, frozen=True, tag="onLeave"):
    user: User


# --- room ----------------------------------------------------------------------------


@_event("room")
class StateChanged(Event, frozen=True, tag="onStateChanged"):
    reason: ZegoRoomStateChangedReason
    errorCode: int = 0
    extendedData: dict[str, Any] = {}


# --- audioVideo ----------------------------------------------------------------------


@_event("audioVideo")
class CameraStateChanged(Event, frozen=True, tag="onCameraStateChanged"):
    isOpened: bool


@_event("audioVideo")
class FrontFacingCameraStateChanged(Event, frozen=True, tag="onFrontFacingCameraStateChanged"):
    isFronted: bool


@_event("audioVideo")
class MicrophoneStateChanged(Event, frozen=True, tag="onMicrophoneStateChanged"):
    isOpened: bool


@_event("audioVideo")
class AudioOutputChanged(Event, frozen=True, tag="onAudioOutputChanged"):
    audioRoute: ZegoUIKitAudioRoute


@_event("audioVideo")
class LocalCameraExceptionOccurred(Event, frozen=True, tag="onLocalCameraExceptionOccurred"):
    exception: ZegoUIKitDeviceExceptionType | None


@_event("audioVideo")
class LocalMicrophoneExceptionOccurred(Event, frozen=True, tag="onLocalMicrophoneExceptionOccurred"):
    exception: ZegoUIKitDeviceExceptionType | None


@_event("audioVideo")
class RemoteCameraExceptionOccurred(Event, frozen=True, tag="onRemoteCameraExceptionOccurred"):
    user: User
    exception: ZegoUIKitDeviceExceptionType | None


@_event("audioVideo")
class RemoteMicrophoneExceptionOccurred(Event, frozen=True, tag="onRemoteMicrophoneExceptionOccurred"):
    user: User
    exception: ZegoUIKitDeviceExceptionType | None


EVENT_TYPES: tuple[type[Event], ...] = tuple(
    cls for cls in globals().values() if isinstance(cls, type) and issubclass(cls, Event) and cls is not Event
)
BY_NAME: dict[str, type[Event]] = {cls.__struct_config__.tag: cls for cls in EVENT_TYPES}
CALLBACK_NAMES: tuple[str, ...] = tuple(BY_NAME)
AnyEvent = Union[EVENT_TYPES]  # type: ignore[valid-type]

_decoder = msgspec.json.Decoder(AnyEvent)
_encoder = msgspec.json.Encoder()


def category_of(event_type: str, source: Source | str) -> str:
    """Where the reference nests a callback; onError follows the service that refused."""
    if event_type == "onError":
        return "invitation" if Source(source) is Source.invitation else "call"
    return BY_NAME[event_type].category


def categories_of(event_type: str) -> tuple[str, ...]:
    if event_type == "onError":
        return ("invitation", "call")
    return (BY_NAME[event_type].category,)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> Event:
    """Decode and validate one event; raises msgspec.ValidationError naming the field."""
    return _decoder.decode(data)
