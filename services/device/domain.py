"""The device-monitor's pure domain: one aggregate per (callID, userID).

A client reports its devices with `DeviceReport`; `decide` turns the report into the
kit's audioVideo callbacks (ARCHITECTURE.md 3.1) and `evolve` folds them back into a
`DeviceState`. No I/O, no clock, no uuid: time and ids come in through `Context`.

State values (camera, frontFacingCamera, microphone, audioRoute) write an event only
when the reported value differs from the last known one; unknown (None) always differs.

Exceptions are occurrences, not state, so each report of one is normally an event:
the local callback to the reporter, then the remote callback to every other member of
the reporter's room. A storm of identical reports must cost nothing, though:

    An exception report is a repeat (no event) when it equals the last exception
    recorded for that device AND no state change of that device was recorded after
    it. State changes of the camera device are onCameraStateChanged and
    onFrontFacingCameraStateChanged; of the microphone device, onMicrophoneStateChanged
    (onAudioOutputChanged is an output route: it re-arms neither device).
    A state change earlier in the same report counts (events are ordered state first).
    `None` (an exception of unknown type) is a value like any other.
"""

from __future__ import annotations

from typing import Iterable

import msgspec
from msgspec import UNSET

from schemas.commands import DeviceReport
from schemas.enums import Source, ZegoUIKitAudioRoute, ZegoUIKitDeviceExceptionType
from schemas.events import (
    AudioOutputChanged,
    CameraStateChanged,
    Error,
    Event,
    FrontFacingCameraStateChanged,
    LocalCameraExceptionOccurred,
    LocalMicrophoneExceptionOccurred,
    MicrophoneStateChanged,
    RemoteCameraExceptionOccurred,
    RemoteMicrophoneExceptionOccurred,
)
from schemas.ids import encode_token
from schemas.types import User
from services.runtime.domain import Context, Stamper

__all__ = ["DeviceException", "DeviceState", "aggregate_key", "decide", "evolve", "fold", "is_repeat"]


class DeviceException(msgspec.Struct, frozen=True, kw_only=True):
    """The last exception recorded for one device: its type (None = unknown type) and the seq of its local event."""

    exception: ZegoUIKitDeviceExceptionType | None
    seq: int


class DeviceState(msgspec.Struct, frozen=True, kw_only=True):
    """What is known of one user's devices in one call; None means unknown (never reported)."""

    callID: str
    userID: str
    version: int = 0  # seq of the last folded event
    camera: bool | None = None
    frontFacingCamera: bool | None = None
    microphone: bool | None = None
    audioRoute: ZegoUIKitAudioRoute | None = None
    cameraException: DeviceException | None = None
    microphoneException: DeviceException | None = None
    cameraChangedSeq: int = 0  # seq of the last camera / front-facing camera state event
    microphoneChangedSeq: int = 0  # seq of the last microphone state event


def aggregate_key(call_id: str, user_id: str) -> str:
    """`<callID>.<userID>`, each encoded as a subject token, so '.' can only be the separator."""
    return f"{encode_token(call_id)}.{encode_token(user_id)}"


# --- decide ---------------------------------------------------------------------------

# (report field, event type, payload name, the device's changed-seq field): state values, in event order.
_VALUES = (
    ("camera", CameraStateChanged, "isOpened", "cameraChangedSeq"),
    ("frontFacingCamera", FrontFacingCameraStateChanged, "isFronted", "cameraChangedSeq"),
    ("microphone", MicrophoneStateChanged, "isOpened", "microphoneChangedSeq"),
    ("audioRoute", AudioOutputChanged, "audioRoute", None),  # an output route: neither device
)
# (report field, local event, remote event, the device's changed-seq field), in event order.
_EXCEPTIONS = (
    ("cameraException", LocalCameraExceptionOccurred, RemoteCameraExceptionOccurred, "cameraChangedSeq"),
    ("microphoneException", LocalMicrophoneExceptionOccurred, RemoteMicrophoneExceptionOccurred, "microphoneChangedSeq"),
)

_VALUE_EVENTS = {field: (event_type, name) for field, event_type, name, _ in _VALUES}
_EXCEPTION_EVENTS = {field: (local, remote) for field, local, remote, _ in _EXCEPTIONS}


def _plan(state: DeviceState | None, command: DeviceReport) -> list[tuple[str, object]]:
    """The fields of the report that write events, in event order, with their values."""
    changed: list[tuple[str, object]] = []
    devices_changed: set[str | None] = set()
    for field, _, _, device in _VALUES:
        value = getattr(command, field)
        if value is not UNSET and (state is None or getattr(state, field) != value):
            changed.append((field, value))
            devices_changed.add(device)
    for field, _, _, device in _EXCEPTIONS:
        value = getattr(command, field)
        if value is UNSET:
            continue
        if device not in devices_changed and _is_repeat_exception(state, field, device, value):
            continue
        changed.append((field, value))
    return changed


def _is_repeat_exception(state: DeviceState | None, field: str, device: str, value: object) -> bool:
    last: DeviceException | None = getattr(state, field) if state else None
    return last is not None and last.exception == value and last.seq > getattr(state, device)


def is_repeat(state: DeviceState | None, command: DeviceReport) -> bool:
    """True when `decide` would write no event for this report (an empty report included)."""
    return not _plan(state, command)


def decide(
    state: DeviceState | None, command: DeviceReport, ctx: Context, *, room_members: tuple[User, ...] = ()
) -> list[Event]:
    """The events of one report, possibly none.

    `room_members` is the reporter's room now; the reporter (and any duplicate) is
    skipped. No rule refuses a report, so this raises no CommandRejected; a state of
    another (call, user) is a wiring bug and raises ValueError.
    """
    reporter = command.user
    if state is not None and (state.callID, state.userID) != (command.callID, reporter.id):
        raise ValueError(f"report for {(command.callID, reporter.id)!r} given the state of {(state.callID, state.userID)!r}")
    stamp = Stamper(
        ctx,
        source=Source.device_monitor,
        call_id=command.callID,
        causation_id=command.commandID,
        version=state.version if state else 0,
    )
    others = tuple({member.id: member for member in room_members if member.id != reporter.id}.values())
    events: list[Event] = []
    for field, value in _plan(state, command):
        if field in _VALUE_EVENTS:
            event_type, name = _VALUE_EVENTS[field]
            events.append(stamp(event_type, reporter.id, **{name: value}))
            continue
        local, remote = _EXCEPTION_EVENTS[field]
        events.append(stamp(local, reporter.id, exception=value))
        events.extend(stamp(remote, member.id, user=reporter, exception=value) for member in others)
    return events


# --- evolve ---------------------------------------------------------------------------

_VALUE_FIELDS = {event_type: (field, name, device) for field, event_type, name, device in _VALUES}
_LOCAL_EXCEPTIONS = {local: field for field, local, _, _ in _EXCEPTIONS}
_REMOTE_EXCEPTIONS = (RemoteCameraExceptionOccurred, RemoteMicrophoneExceptionOccurred)


def evolve(state: DeviceState | None, event: Event) -> DeviceState:
    """Fold one event; its seq must follow the state's version without a gap.

    Remote exception events and onError only bump the version: the local exception
    event of the same decision already recorded the exception.
    """
    if state is None:
        reporter = event.user.id if isinstance(event, _REMOTE_EXCEPTIONS) else event.recipient
        state = DeviceState(callID=event.callID, userID=reporter)
    if event.callID != state.callID:
        raise ValueError(f"{event.type} of call {event.callID!r} folded into call {state.callID!r}")
    if event.seq != state.version + 1:
        raise ValueError(f"{event.type} has seq {event.seq}, expected {state.version + 1} after version {state.version}")
    kind = type(event)
    changes: dict[str, object] = {"version": event.seq}
    if kind in _VALUE_FIELDS:
        field, name, device = _VALUE_FIELDS[kind]
        changes[field] = getattr(event, name)
        if device:
            changes[device] = event.seq
    elif kind in _LOCAL_EXCEPTIONS:
        changes[_LOCAL_EXCEPTIONS[kind]] = DeviceException(exception=event.exception, seq=event.seq)
    elif not isinstance(event, (Error, *_REMOTE_EXCEPTIONS)):
        raise TypeError(f"{event.type} is not an event of the device-monitor")
    return msgspec.structs.replace(state, **changes)


def fold(events: Iterable[Event], state: DeviceState | None = None) -> DeviceState | None:
    """Evolve `state` through `events` in order; None when there are none and no state."""
    for event in events:
        state = evolve(state, event)
    return state
