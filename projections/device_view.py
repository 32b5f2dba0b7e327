"""Each user's current devices and last exceptions, folded from audioVideo events. Pure.

The reporting user is the event's recipient for state events and local exception
events. onRemote*ExceptionOccurred are copies of a local exception for the other
members (their `user` is the reporter): the local event already recorded it, so the
copies are not folded here (they stay in the call's timeline).
"""

from __future__ import annotations

import msgspec

from schemas import events as ev

RECENT_EXCEPTIONS = 20


class DeviceException(msgspec.Struct, kw_only=True):
    device: str  # camera or microphone
    exception: str | None  # ZegoUIKitDeviceExceptionType value; None = of unknown type
    callID: str
    at: str


class DeviceView(msgspec.Struct, kw_only=True):
    userID: str
    callID: str | None = None  # the call of the last report
    camera: bool | None = None  # None: never reported
    frontFacingCamera: bool | None = None
    microphone: bool | None = None
    audioRoute: str | None = None
    updatedAt: str | None = None
    lastExceptions: dict[str, DeviceException] = {}  # by device
    recentExceptions: list[DeviceException] = []  # oldest first, at most RECENT_EXCEPTIONS


def _value(field: str, attribute: str):
    def fold(view: DeviceView, event) -> None:
        value = getattr(event, attribute)
        setattr(view, field, value.value if hasattr(value, "value") else value)

    return fold


def _exception(device: str):
    def fold(view: DeviceView, event) -> None:
        exception = event.exception.value if event.exception is not None else None
        record = DeviceException(device=device, exception=exception, callID=event.callID, at=event.occurredAt)
        view.lastExceptions[device] = record
        view.recentExceptions.append(record)
        del view.recentExceptions[:-RECENT_EXCEPTIONS]

    return fold


FOLDS = {
    ev.CameraStateChanged: _value("camera", "isOpened"),
    ev.FrontFacingCameraStateChanged: _value("frontFacingCamera", "isFronted"),
    ev.MicrophoneStateChanged: _value("microphone", "isOpened"),
    ev.AudioOutputChanged: _value("audioRoute", "audioRoute"),
    ev.LocalCameraExceptionOccurred: _exception("camera"),
    ev.LocalMicrophoneExceptionOccurred: _exception("microphone"),
}


def is_device_event(event: ev.Event) -> bool:
    return type(event) in FOLDS


def fold_device(view: DeviceView | None, event: ev.Event) -> DeviceView:
    """Fold one device event of its recipient (check `is_device_event` first)."""
    if view is None:
        view = DeviceView(userID=event.recipient)
    FOLDS[type(event)](view, event)
    view.callID = event.callID
    view.updatedAt = event.occurredAt
    return view
