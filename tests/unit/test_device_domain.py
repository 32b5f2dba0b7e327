"""The device-monitor domain: given events / when a report / then events. No server, no clock."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import msgspec
import pytest

from schemas.commands import DeviceReport
from schemas.enums import Source, ZegoUIKitAudioRoute as Route, ZegoUIKitDeviceExceptionType as Exc
from schemas.events import (
    AudioOutputChanged,
    CameraStateChanged,
    Enter,
    Error,
    FrontFacingCameraStateChanged,
    LocalCameraExceptionOccurred,
    LocalMicrophoneExceptionOccurred,
    MicrophoneStateChanged,
    RemoteCameraExceptionOccurred,
    decode_event,
    encode_event,
)
from schemas.ids import decode_token
from schemas.types import User, ZegoUIKitError
from services.device.domain import DeviceException, DeviceState, aggregate_key, decide, evolve, fold, is_repeat
from services.runtime.domain import Context

CALL = "call42"
ANN = User(id="ann", name="Ann")
BOB = User(id="bob", name="Bob")
CAROL = User(id="carol")
NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
OCCURRED_AT = "2024-05-06T07:08:09.123Z"


def context() -> Context:
    counter = itertools.count(1)
    return Context(now=NOW, new_id=lambda: f"evt-{next(counter)}")


def report(command_id: str = "cmd-1", user: User = ANN, **fields) -> DeviceReport:
    return DeviceReport(commandID=command_id, callID=CALL, user=user, **fields)


def event(cls, seq: int, recipient: str = "ann", **payload):
    """A recorded event, as the store would give it back."""
    return cls(
        eventID=f"old-{seq}", callID=CALL, recipient=recipient, seq=seq, occurredAt="2024-05-06T07:00:00.000Z",
        source=Source.device_monitor, causationID=f"old-cmd-{seq}", **payload,
    )


def when(given: list, command: DeviceReport, members: tuple[User, ...] = ()) -> list:
    """Fold the given events, decide the command, and check the decision folds gaplessly too."""
    state = fold(given)
    events = decide(state, command, context(), room_members=members)
    assert is_repeat(state, command) == (events == [])
    after = fold(events, state)
    if events:
        assert after.version == events[-1].seq
    return events


def shape(events: list) -> list[tuple]:
    """What a test cares about: type, recipient, seq and the payload."""
    envelope = {"eventID", "callID", "recipient", "seq", "occurredAt", "source", "causationID"}
    return [
        (e.type, e.recipient, e.seq, {k: v for k, v in msgspec.structs.asdict(e).items() if k not in envelope})
        for e in events
    ]


# --- state values -------------------------------------------------------------------

FIELDS = [
    ("camera", True, "onCameraStateChanged", {"isOpened": True}),
    ("frontFacingCamera", False, "onFrontFacingCameraStateChanged", {"isFronted": False}),
    ("microphone", False, "onMicrophoneStateChanged", {"isOpened": False}),
    ("audioRoute", Route.bluetooth, "onAudioOutputChanged", {"audioRoute": Route.bluetooth}),
]


@pytest.mark.parametrize("field, value, callback, payload", FIELDS)
def test_first_report_of_each_field_writes_its_callback_to_the_reporter(field, value, callback, payload):
    events = when([], report(**{field: value}), members=(ANN, BOB))
    assert shape(events) == [(callback, "ann", 1, payload)]
    (only,) = events
    assert (only.eventID, only.callID, only.occurredAt, only.source, only.causationID) == (
        "evt-1", CALL, OCCURRED_AT, Source.device_monitor, "cmd-1",
    )
    assert decode_event(encode_event(only)) == only
    assert getattr(fold(events), field) == value


@pytest.mark.parametrize("field, value, callback, payload", FIELDS)
def test_a_repeated_value_writes_nothing(field, value, callback, payload):
    state = fold(decide(None, report(**{field: value}), context()))
    assert is_repeat(state, report("cmd-2", **{field: value}))
    assert decide(state, report("cmd-2", **{field: value}), context()) == []


def test_a_changed_value_writes_again():
    given = [event(CameraStateChanged, 1, isOpened=True), event(AudioOutputChanged, 2, audioRoute=Route.speaker)]
    assert shape(when(given, report(camera=False, audioRoute=Route.receiver))) == [
        ("onCameraStateChanged", "ann", 3, {"isOpened": False}),
        ("onAudioOutputChanged", "ann", 4, {"audioRoute": Route.receiver}),
    ]


def test_a_partial_report_writes_only_what_changed_and_leaves_the_rest_unknown():
    given = [event(CameraStateChanged, 1, isOpened=True)]
    assert shape(when(given, report(camera=True, microphone=True))) == [
        ("onMicrophoneStateChanged", "ann", 2, {"isOpened": True}),
    ]
    state = fold(given + when(given, report(camera=True, microphone=True)))
    assert (state.camera, state.microphone, state.frontFacingCamera, state.audioRoute) == (True, True, None, None)


def test_an_empty_report_writes_nothing():
    assert when([], report()) == []
    assert is_repeat(None, report())


def test_a_full_report_is_ordered_and_gapless():
    events = when(
        [event(Error, 1, error=ZegoUIKitError(code=300002001, message="x", method="report"))],
        report(camera=True, frontFacingCamera=True, microphone=True, audioRoute=Route.speaker,
               cameraException=Exc.deviceOccupied, microphoneException=Exc.permissionNotGranted),
        members=(BOB, ANN, CAROL),
    )
    assert [(e.type, e.recipient, e.seq) for e in events] == [
        ("onCameraStateChanged", "ann", 2),
        ("onFrontFacingCameraStateChanged", "ann", 3),
        ("onMicrophoneStateChanged", "ann", 4),
        ("onAudioOutputChanged", "ann", 5),
        ("onLocalCameraExceptionOccurred", "ann", 6),
        ("onRemoteCameraExceptionOccurred", "bob", 7),
        ("onRemoteCameraExceptionOccurred", "carol", 8),
        ("onLocalMicrophoneExceptionOccurred", "ann", 9),
        ("onRemoteMicrophoneExceptionOccurred", "bob", 10),
        ("onRemoteMicrophoneExceptionOccurred", "carol", 11),
    ]
    assert [e.eventID for e in events] == [f"evt-{n}" for n in range(1, 11)]
    assert {e.causationID for e in events} == {"cmd-1"}


# --- exceptions ---------------------------------------------------------------------


def test_an_exception_goes_to_the_reporter_and_exactly_the_other_members():
    events = when([], report(microphoneException=Exc.soundLevelTooLow), members=(CAROL, ANN, BOB))
    assert shape(events) == [
        ("onLocalMicrophoneExceptionOccurred", "ann", 1, {"exception": Exc.soundLevelTooLow}),
        ("onRemoteMicrophoneExceptionOccurred", "carol", 2, {"user": ANN, "exception": Exc.soundLevelTooLow}),
        ("onRemoteMicrophoneExceptionOccurred", "bob", 3, {"user": ANN, "exception": Exc.soundLevelTooLow}),
    ]


def test_an_exception_with_nobody_else_in_the_room_goes_to_the_reporter_only():
    assert shape(when([], report(cameraException=Exc.inBackground), members=(ANN,))) == [
        ("onLocalCameraExceptionOccurred", "ann", 1, {"exception": Exc.inBackground}),
    ]


def test_an_exception_of_unknown_type_is_none():
    events = when([], report(cameraException=None), members=(BOB,))
    assert shape(events) == [
        ("onLocalCameraExceptionOccurred", "ann", 1, {"exception": None}),
        ("onRemoteCameraExceptionOccurred", "bob", 2, {"user": ANN, "exception": None}),
    ]
    assert fold(events).cameraException == DeviceException(exception=None, seq=1)
    assert when(events, report("cmd-2", cameraException=None), members=(BOB,)) == []
    assert len(when(events, report("cmd-2", cameraException=Exc.unknown), members=(BOB,))) == 2


def test_a_repeated_identical_exception_writes_nothing():
    given = [
        event(LocalCameraExceptionOccurred, 1, exception=Exc.deviceOccupied),
        event(RemoteCameraExceptionOccurred, 2, recipient="bob", user=ANN, exception=Exc.deviceOccupied),
        event(MicrophoneStateChanged, 3, isOpened=False),  # another device: does not re-arm the camera
        event(AudioOutputChanged, 4, audioRoute=Route.headphone),
    ]
    storm = report("cmd-2", cameraException=Exc.deviceOccupied, microphone=False)
    assert is_repeat(fold(given), storm)
    assert when(given, storm, members=(BOB,)) == []
    assert [e.type for e in when(given, report(cameraException=Exc.generic), members=(BOB,))] == [
        "onLocalCameraExceptionOccurred", "onRemoteCameraExceptionOccurred",
    ]


def test_the_same_exception_on_the_other_device_is_not_a_repeat():
    given = [event(LocalCameraExceptionOccurred, 1, exception=Exc.generic)]
    assert shape(when(given, report(microphoneException=Exc.generic))) == [
        ("onLocalMicrophoneExceptionOccurred", "ann", 2, {"exception": Exc.generic}),
    ]


@pytest.mark.parametrize("change", [
    event(CameraStateChanged, 2, isOpened=True), event(FrontFacingCameraStateChanged, 2, isFronted=False),
])
def test_the_same_exception_after_a_camera_state_change_writes_again(change):
    given = [event(LocalCameraExceptionOccurred, 1, exception=Exc.zeroCaptureFps), change]
    assert shape(when(given, report(cameraException=Exc.zeroCaptureFps), members=(BOB,))) == [
        ("onLocalCameraExceptionOccurred", "ann", 3, {"exception": Exc.zeroCaptureFps}),
        ("onRemoteCameraExceptionOccurred", "bob", 4, {"user": ANN, "exception": Exc.zeroCaptureFps}),
    ]


def test_a_state_change_in_the_same_report_re_arms_the_exception():
    given = [event(MicrophoneStateChanged, 1, isOpened=True), event(LocalMicrophoneExceptionOccurred, 2, exception=None)]
    assert shape(when(given, report(microphone=False, microphoneException=None))) == [
        ("onMicrophoneStateChanged", "ann", 3, {"isOpened": False}),
        ("onLocalMicrophoneExceptionOccurred", "ann", 4, {"exception": None}),
    ]
    assert when(given, report(microphone=True, microphoneException=None)) == []


# --- aggregate, evolve and fold -----------------------------------------------------


def test_seq_stays_gapless_across_decisions():
    state, seqs = None, []
    reports = [report(camera=True, cameraException=Exc.generic), report(camera=True), report(microphone=True),
               report(cameraException=Exc.generic), report(camera=False, cameraException=Exc.generic)]
    for number, command in enumerate(reports):
        events = decide(state, msgspec.structs.replace(command, commandID=f"c{number}"), context(), room_members=(BOB,))
        seqs += [e.seq for e in events]
        state = fold(events, state)
    assert seqs == list(range(1, 8)) and state.version == 7
    assert state == DeviceState(
        callID=CALL, userID="ann", version=7, camera=False, microphone=True,
        cameraException=DeviceException(exception=Exc.generic, seq=6), cameraChangedSeq=5, microphoneChangedSeq=4,
    )


def test_on_error_only_bumps_the_version():
    state = fold([event(CameraStateChanged, 1, isOpened=True)])
    error = event(Error, 2, error=ZegoUIKitError(code=300002001, message="no", method="report"))
    assert evolve(state, error) == msgspec.structs.replace(state, version=2)
    first = msgspec.structs.replace(error, seq=1)
    assert evolve(None, first) == DeviceState(callID=CALL, userID="ann", version=1)


def test_evolve_refuses_gaps_other_calls_and_foreign_events():
    state = fold([event(CameraStateChanged, 1, isOpened=True)])
    with pytest.raises(ValueError, match="expected 2"):
        evolve(state, event(CameraStateChanged, 3, isOpened=False))
    with pytest.raises(ValueError, match="expected 1"):
        evolve(None, event(CameraStateChanged, 2, isOpened=False))
    with pytest.raises(ValueError, match="call"):
        evolve(state, msgspec.structs.replace(event(CameraStateChanged, 2, isOpened=False), callID="other"))
    with pytest.raises(TypeError):
        evolve(state, event(Enter, 2, user=BOB))
    with pytest.raises(AttributeError):
        state.camera = False  # immutable


def test_decide_refuses_the_state_of_another_aggregate():
    with pytest.raises(ValueError):
        decide(fold([event(CameraStateChanged, 1, isOpened=True)]), report(user=BOB, camera=False), context())


def test_a_remote_exception_folded_first_belongs_to_its_reporter():
    remote = event(RemoteCameraExceptionOccurred, 1, recipient="bob", user=ANN, exception=Exc.generic)
    assert evolve(None, remote) == DeviceState(callID=CALL, userID="ann", version=1)


def test_fold_of_nothing_is_the_given_state():
    assert fold([]) is None
    state = DeviceState(callID=CALL, userID="ann")
    assert fold([], state) is state


def test_aggregate_key_is_stable_and_unambiguous():
    assert aggregate_key("call42", "ann") == "call42.ann"
    assert aggregate_key("c:1.x", "ann.lee@x%2E") == "c%3A1%2Ex.ann%2Elee%40x%252E"
    pairs = [("a.b", "c"), ("a", "b.c"), ("a:b", "c"), ("a", "b:c"), ("a%2Eb", "c"), ("a%b", "c"), ("a", "%b")]
    keys = [aggregate_key(*pair) for pair in pairs]
    assert len(set(keys)) == len(pairs)
    assert all(tuple(map(decode_token, key.split("."))) == pair for key, pair in zip(keys, pairs))
