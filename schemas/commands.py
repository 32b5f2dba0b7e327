"""Commands (ARCHITECTURE.md section 4): JSON in, validated at decode time."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.enums import (
    ZegoCallInvitationType,
    ZegoRoomStateChangedReason,
    ZegoUIKitAudioRoute,
    ZegoUIKitDeviceExceptionType,
)
from schemas.types import CUSTOM_DATA_MAX_BYTES, CallID, CommandID, CustomData, TimeoutSeconds, User

MAX_CALLEES = 9
Callees = Annotated[list[User], msgspec.Meta(min_length=1, max_length=MAX_CALLEES)]


class InvalidCommand(ValueError):
    """A rule msgspec cannot express; the message names the field like msgspec does."""


class Command(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    service: ClassVar[str]
    verb: ClassVar[str]
    actor_field: ClassVar[str]

    commandID: CommandID

    @property
    def actor(self) -> User:
        return getattr(self, self.actor_field)

    def check(self) -> None:
        custom = getattr(self, "customData", "")
        if len(custom.encode("utf-8")) > CUSTOM_DATA_MAX_BYTES:
            raise InvalidCommand(f"customData exceeds {CUSTOM_DATA_MAX_BYTES} bytes - at `$.customData`")


class Send(Command, frozen=True):
    service, verb, actor_field = "invitation", "send", "caller"
    caller: User
    callees: Callees
    callType: ZegoCallInvitationType
    callID: CallID | None = None
    customData: CustomData = ""
    timeoutSeconds: TimeoutSeconds = 60

    def check(self) -> None:
        super().check()
        seen = set()
        for index, callee in enumerate(self.callees):
            if callee.id == self.caller.id:
                raise InvalidCommand(f"the caller cannot invite themself - at `$.callees[{index}].id`")
            if callee.id in seen:
                raise InvalidCommand(f"callee {callee.id!r} is listed twice - at `$.callees[{index}].id`")
            seen.add(callee.id)


class Accept(Command, frozen=True):
    service, verb, actor_field = "invitation", "accept", "callee"
    callID: CallID
    callee: User
    customData: CustomData = ""


class Decline(Command, frozen=True):
    service, verb, actor_field = "invitation", "decline", "callee"
    callID: CallID
    callee: User
    customData: CustomData = ""
    reason: Literal["decline", "busy"] = "decline"


class Cancel(Command, frozen=True):
    service, verb, actor_field = "invitation", "cancel", "caller"
    callID: CallID
    caller: User
    customData: CustomData = ""


class Received(Command, frozen=True):
    service, verb, actor_field = "invitation", "received", "callee"
    callID: CallID
    callee: User


class MissedCallClick(Command, frozen=True):
    service, verb, actor_field = "invitation", "missed_call_click", "user"
    callID: CallID
    user: User
    dialBack: bool = True


class Join(Command, frozen=True):
    service, verb, actor_field = "room", "join", "user"
    callID: CallID
    user: User


class HangUp(Command, frozen=True):
    service, verb, actor_field = "room", "hang_up", "user"
    callID: CallID
    user: User


class Kick(Command, frozen=True):
    service, verb, actor_field = "room", "kick", "kicker"
    callID: CallID
    kicker: User
    target: User


class ReportState(Command, frozen=True):
    service, verb, actor_field = "room", "report_state", "user"
    callID: CallID
    user: User
    reason: ZegoRoomStateChangedReason
    errorCode: int = 0
    extendedData: dict[str, Any] = {}


class DeviceReport(Command, frozen=True):
    service, verb, actor_field = "device", "report", "user"
    callID: CallID
    user: User
    camera: bool | UnsetType = UNSET
    frontFacingCamera: bool | UnsetType = UNSET
    microphone: bool | UnsetType = UNSET
    audioRoute: ZegoUIKitAudioRoute | UnsetType = UNSET
    cameraException: ZegoUIKitDeviceExceptionType | None | UnsetType = UNSET
    microphoneException: ZegoUIKitDeviceExceptionType | None | UnsetType = UNSET


COMMAND_TYPES: tuple[type[Command], ...] = (
    Send, Accept, Decline, Cancel, Received, MissedCallClick, Join, HangUp, Kick, ReportState, DeviceReport,
)
BY_SUBJECT_VERB: dict[tuple[str, str], type[Command]] = {(c.service, c.verb): c for c in COMMAND_TYPES}

_decoders = {cls: msgspec.json.Decoder(cls) for cls in COMMAND_TYPES}


def decode_command(cls: type[Command], data: bytes) -> Command:
    """Decode, validate and check one command; raises msgspec.ValidationError, DecodeError or InvalidCommand."""
    command = _decoders[cls].decode(data)
    command.check()
    return command
