"""The callback catalog against the reference page: names, places, parameters and their order."""

import re
from pathlib import Path

import msgspec
import pytest

from ringlog import callbacks
from ringlog.callbacks import CALLBACKS, Callback, registered
from schemas import events

# The reference's examples, copied: `name: (params) { ... }` (onIncomingMissedCallClicked and
# onIncomingMissedCallDialBackFailed have only a prototype there).
REFERENCE = {
    ("invitation", "onError"): ("error",),
    ("invitation", "onInvitationUserStateChanged"): ("userInfos",),
    ("invitation", "onIncomingCallDeclineButtonPressed"): (),
    ("invitation", "onIncomingCallAcceptButtonPressed"): (),
    ("invitation", "onIncomingCallReceived"): ("callID", "caller", "callType", "callees", "customData"),
    ("invitation", "onIncomingCallCanceled"): ("callID", "caller", "customData"),
    ("invitation", "onIncomingCallTimeout"): ("callID", "caller"),
    ("invitation", "onIncomingMissedCallClicked"): ("callID", "caller", "callType", "callees", "customData", "defaultAction"),
    ("invitation", "onIncomingMissedCallDialBackFailed"): (),
    ("invitation", "onOutgoingCallCancelButtonPressed"): (),
    ("invitation", "onOutgoingCallAccepted"): ("callID", "callee"),
    ("invitation", "onOutgoingCallRejectedCauseBusy"): ("callID", "callee", "customData"),
    ("invitation", "onOutgoingCallDeclined"): ("callID", "callee", "customData"),
    ("invitation", "onOutgoingCallTimeout"): ("callID", "callees", "isVideoCall"),
    ("call", "onError"): ("ZegoUIKitError",),
    ("call", "onHangUpConfirmation"): ("context",),
    ("call", "onCallEnd"): ("event", "defaultAction"),
    ("user", "onEnter"): ("user",),
    ("user", "onLeave"): ("user",),
    ("room", "onStateChanged"): ("state",),
    ("audioVideo", "onCameraStateChanged"): ("isOpened",),
    ("audioVideo", "onFrontFacingCameraStateChanged"): ("isFronted",),
    ("audioVideo", "onMicrophoneStateChanged"): ("isOpened",),
    ("audioVideo", "onAudioOutputChanged"): ("audioRoute",),
    ("audioVideo", "onLocalCameraExceptionOccurred"): ("exception",),
    ("audioVideo", "onLocalMicrophoneExceptionOccurred"): ("exception",),
    ("audioVideo", "onRemoteCameraExceptionOccurred"): ("user", "exception"),
    ("audioVideo", "onRemoteMicrophoneExceptionOccurred"): ("user", "exception"),
}
ALIASES = {"ZegoUIKitError": "error"}  # the call events' example names the parameter by its type
REFERENCE_PAGE = Path(__file__).resolve().parents[3] / "shared" / "spec" / "call-events-reference.txt"


def catalog():
    return {(cb.category, cb.name): cb for cb in CALLBACKS}


def test_every_event_type_has_a_callback_in_each_of_its_categories():
    expected = {(category, name) for name in events.CALLBACK_NAMES for category in events.categories_of(name)}
    assert set(catalog()) == expected and len(CALLBACKS) == len(expected)


def test_parameters_are_the_references_in_its_order():
    for key, params in REFERENCE.items():
        assert catalog()[key].params == tuple(ALIASES.get(p, p) for p in params), key
    assert catalog()[("invitation", "onOutgoingCallSent")].params == ("callID", "caller", "callType", "callees", "customData")


@pytest.mark.skipif(not REFERENCE_PAGE.is_file(), reason="the reference page (shared/spec) is not beside the repository")
def test_the_copied_signatures_match_the_reference_page():
    text = REFERENCE_PAGE.read_text()
    found: dict[str, set[tuple[str, ...]]] = {}
    for name, params in re.findall(r"(on\w+): \(([^)]*)\) \{", text):
        found.setdefault(name, set()).add(tuple(p.strip() for p in params.split(",") if p.strip()))
    for params, name in re.findall(r"Function\(((?:[^()]|\(\))*)\)\?\s*(on\w+);", text):
        if name not in found:  # prototypes only where the page has no example: the last word is the name
            found[name] = {tuple(re.findall(r"(\w+)\s*$", part)[0] for part in params.split(",") if part.strip())}
    for (category, name), params in REFERENCE.items():
        assert params in found[name], (name, found[name])
    assert set(found) == {name for _, name in REFERENCE}


def test_the_holders_offer_exactly_the_catalogs_handlers():
    places = {
        "invitation_events": callbacks.ZegoUIKitPrebuiltCallInvitationEvents,
        "events": callbacks.ZegoUIKitPrebuiltCallEvents,
        "events.user": callbacks.ZegoCallUserEvents,
        "events.room": callbacks.ZegoCallRoomEvents,
        "events.audioVideo": callbacks.ZegoCallAudioVideoEvents,
    }
    for group, cls in places.items():
        assert set(callbacks.holder_fields(cls)) == {cb.name for cb in CALLBACKS if cb.group == group}, group
    assert callbacks.CallEvents is callbacks.ZegoUIKitPrebuiltCallEvents


SAMPLES = {
    "caller": {"id": "alice", "name": "Alice"}, "callee": {"id": "bob"}, "callees": [{"id": "bob"}],
    "callType": "videoCall", "customData": "cd", "isVideoCall": True, "timeoutSeconds": 30, "dialBack": False,
    "userInfos": [{"userID": "bob", "state": "accepted"}], "confirmed": False, "user": {"id": "carol"},
    "error": {"code": 301003004, "message": "m", "method": "invitation.accept"}, "isOpened": True,
    "isFronted": False, "audioRoute": "bluetooth", "exception": "deviceOccupied", "kickerUserID": "alice",
    "errorCode": 7, "extendedData": {"room_session_id": "s1"},
}
REASONS = {"onCallEnd": "kickOut", "onStateChanged": "Logined", "onIncomingMissedCallDialBackFailed": "busy"}


def sample(name: str) -> events.Event:
    cls = events.BY_NAME[name]
    data = {"type": name, "eventID": "e1", "callID": "c1", "recipient": "bob", "seq": 3,
            "occurredAt": "2024-01-01T00:00:00.000Z", "source": "invitation", "causationID": "k1"}
    for field in msgspec.structs.fields(cls):
        if field.encode_name in SAMPLES:
            data[field.encode_name] = SAMPLES[field.encode_name]
    if name in REASONS:
        data["reason"] = REASONS[name]
    return msgspec.json.decode(msgspec.json.encode(data), type=events.AnyEvent)


@pytest.mark.parametrize("callback", CALLBACKS, ids=lambda cb: f"{cb.category}.{cb.name}")
def test_arguments_come_from_the_event_fields_in_order(callback: Callback):
    event = sample(callback.name)
    action = object()
    args = callback.arguments(event, action)
    assert len(args) == len(callback.params)
    for param, value in zip(callback.params, args):
        if param in ("event", "state", "context"):
            assert value is event
        elif param == "defaultAction":
            assert value is action
        else:
            assert value == getattr(event, param) and (param in SAMPLES or param == "callID")


def test_object_parameters_read_like_the_kits_classes():
    end = catalog()[("call", "onCallEnd")].arguments(sample("onCallEnd"))[0]
    assert (end.reason.value, end.kickerUserID) == ("kickOut", "alice")
    state = catalog()[("room", "onStateChanged")].arguments(sample("onStateChanged"))[0]
    assert (state.reason.value, state.errorCode, state.extendedData["room_session_id"]) == ("Logined", 7, "s1")
    [infos] = catalog()[("invitation", "onInvitationUserStateChanged")].arguments(sample("onInvitationUserStateChanged"))
    assert [(info.userID, info.state.value) for info in infos] == [("bob", "accepted")]
    [error] = catalog()[("call", "onError")].arguments(sample("onError"))
    assert (error.code, error.method) == (301003004, "invitation.accept")
    assert catalog()[("invitation", "onIncomingCallAcceptButtonPressed")].arguments(sample("onIncomingCallAcceptButtonPressed")) == ()


def test_registered_collects_set_handlers_in_catalog_order_and_refuses_non_callables():
    events_ = callbacks.CallEvents(onCallEnd=print, user=callbacks.UserEvents(onLeave=len))
    invitation = callbacks.InvitationEvents(onIncomingCallReceived=repr)
    found = [(cb.category, cb.name, handler) for cb, handler in registered(events_, invitation)]
    assert found == [("invitation", "onIncomingCallReceived", repr), ("call", "onCallEnd", print), ("user", "onLeave", len)]
    with pytest.raises(TypeError):
        registered(callbacks.CallEvents(onError="not a function"), callbacks.InvitationEvents())
