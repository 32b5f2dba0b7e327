"""The public vocabulary against the reference page and ARCHITECTURE.md sections 3 and 4."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
import re
from pathlib import Path

import msgspec
import pytest

from schemas import commands, enums, events, generate
from schemas.enums import Source
from schemas.types import InvitationUserInfo, User, ZegoUIKitError
from services.runtime.domain import parse_timestamp, timestamp

SHARED = Path(os.environ.get("RINGLOG_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
REFERENCE = SHARED / "spec" / "call-events-reference.txt"
ARCHITECTURE = SHARED / "design" / "ARCHITECTURE.md"


def read(path: Path) -> str:
    if not path.is_file():
        pytest.skip(f"{path} not found (set RINGLOG_SHARED_DIR)")
    return path.read_text(encoding="utf-8")


# --- generated files -----------------------------------------------------------------


def test_generated_files_are_not_stale():
    problems = generate.stale()
    assert not problems, "generated schema files are stale, run `make schemas`:\n  " + "\n  ".join(problems)


def test_check_reports_changed_missing_and_extra_files(tmp_path, capsys):
    generate.write(tmp_path)
    assert generate.stale(tmp_path) == [] and generate.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "enums.json").write_text("{}\n")
    (tmp_path / "events" / "onEnter.json").unlink()
    (tmp_path / "events" / "onGone.json").write_text("{}\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "make schemas" in err and "enums.json (differs)" in err and "onEnter.json (missing)" in err
    assert "onGone.json (not generated any more)" in err
    generate.write(tmp_path)
    assert generate.stale(tmp_path) == [] and not (tmp_path / "events" / "onGone.json").exists()


def test_generator_output_describes_every_event_and_command():
    files = generate.build()
    index = msgspec.json.decode(files["index.json"])
    for name, cls in events.BY_NAME.items():
        schema = msgspec.json.decode(files[f"events/{name}.json"])
        assert schema["$id"].endswith(f"events/{name}.json") and schema["title"] == name
        assert all(c in schema["description"] for c in events.categories_of(name)), schema["description"]
        assert f"Recipient: {generate.RECIPIENTS[name][0]}." in schema["description"]
        assert set(schema["properties"]) == {"type"} | {f.encode_name for f in msgspec.structs.fields(cls)}
        subjects = [f"ringlog.evt.{c}.{name}.{{callID}}.{{recipient}}" for c in events.categories_of(name)]
        assert index["events"][name]["subjects"] == subjects
    assert index["events"]["onError"]["categories"] == ["invitation", "call"]
    for cls in commands.COMMAND_TYPES:
        key = f"{cls.service}.{cls.verb}"
        assert msgspec.json.decode(files[f"commands/{key}.json"])["title"] == key
        assert index["commands"][key]["subject"] == f"ringlog.cmd.{key}"


# --- callbacks and enums against the reference -----------------------------------------


def reference_callbacks() -> set[str]:
    """Callback names that stand alone on a line: the reference's section headings."""
    return set(re.findall(r"^(on[A-Z]\w+)$", read(REFERENCE), flags=re.MULTILINE))


def test_every_reference_callback_is_an_event():
    names = reference_callbacks()
    assert len(names) == 27 and "onLeaveConfirmation" not in names  # prose mention only
    assert set(events.BY_NAME) == names | {"onOutgoingCallSent"}


def test_device_exception_values_match_the_reference_in_order():
    body = re.search(r"enum ZegoUIKitDeviceExceptionType \{(.*?)\}", read(REFERENCE), flags=re.DOTALL).group(1)
    values = re.findall(r"^(\w+),$", body, flags=re.MULTILINE)
    assert len(values) == 18
    assert [m.value for m in enums.ZegoUIKitDeviceExceptionType] == values


def architecture_enums() -> dict[str, list[str]]:
    section = read(ARCHITECTURE).split("## 3. Events", 1)[1].split("### 3.1", 1)[0]
    found = {}
    for name, text in re.findall(r"^- `(Zego\w+)`: (.*?)(?=^- |\Z)", section, flags=re.MULTILINE | re.DOTALL):
        values = [v.strip() for v in " ".join(text.split()).split(",")]
        if all(re.fullmatch(r"[A-Za-z]+", v) for v in values):
            found[name] = values
    return found


def test_enums_match_architecture_value_for_value():
    expected = architecture_enums()
    assert set(expected) == {
        "ZegoCallInvitationType", "ZegoSignalingPluginInvitationUserState", "ZegoCallEndReason",
        "ZegoRoomStateChangedReason", "ZegoUIKitAudioRoute",
    }
    for name, values in expected.items():
        assert [m.value for m in getattr(generate.enums, name)] == values, name
    assert [m.value for m in Source] == ["invitation", "room", "device-monitor"]


# --- events ----------------------------------------------------------------------------

ENVELOPE = dict(
    eventID="0b7f3c1e-5d2a-4c1b-9a8e-2f6d4e3c2b1a", callID="call.42*>", recipient="ann.lee@x", seq=3,
    occurredAt="2024-05-01T12:00:00.123Z", causationID="cmd-1",
)
ANN, BOB, CY = User(id="ann.lee@x", name="Ann"), User(id="bob"), User(id="cy", name="Cy é")
SOURCE = {"invitation": Source.invitation, "call": Source.room, "user": Source.room, "room": Source.room}
PARAMS = {
    "onOutgoingCallSent": dict(caller=ANN, callees=[BOB, CY], callType="videoCall", customData="é{}", timeoutSeconds=30),
    "onIncomingCallReceived": dict(caller=ANN, callType="voiceCall", callees=[BOB], customData="x"),
    "onOutgoingCallRejectedCauseBusy": dict(callee=BOB, customData="busy"),
    "onInvitationUserStateChanged": dict(userInfos=[InvitationUserInfo(userID="bob", state="accepted")]),
    "onIncomingCallAcceptButtonPressed": {}, "onIncomingCallDeclineButtonPressed": {},
    "onOutgoingCallCancelButtonPressed": {},
    "onOutgoingCallAccepted": dict(callee=BOB), "onOutgoingCallDeclined": dict(callee=BOB, customData="no"),
    "onIncomingCallCanceled": dict(caller=ANN, customData="c"), "onIncomingCallTimeout": dict(caller=ANN),
    "onOutgoingCallTimeout": dict(callees=[BOB, CY], isVideoCall=True),
    "onIncomingMissedCallClicked": dict(caller=ANN, callType="videoCall", callees=[BOB], dialBack=False),
    "onIncomingMissedCallDialBackFailed": dict(reason="caller busy"),
    "onError": dict(error=ZegoUIKitError(code=301003004, message="not ringing", method="accept")),
    "onHangUpConfirmation": dict(confirmed=False), "onCallEnd": dict(reason="kickOut", kickerUserID="bob"),
    "onEnter": dict(user=BOB), "onLeave": dict(user=BOB),
    "onStateChanged": dict(reason="Logined", errorCode=0, extendedData={"room_session_id": "r1", "n": [1, None]}),
    "onCameraStateChanged": dict(isOpened=True), "onFrontFacingCameraStateChanged": dict(isFronted=False),
    "onMicrophoneStateChanged": dict(isOpened=False), "onAudioOutputChanged": dict(audioRoute="bluetooth"),
    "onLocalCameraExceptionOccurred": dict(exception="permissionNotGranted"),
    "onLocalMicrophoneExceptionOccurred": dict(exception=None),
    "onRemoteCameraExceptionOccurred": dict(user=BOB, exception="deviceOccupied"),
    "onRemoteMicrophoneExceptionOccurred": dict(user=BOB, exception="bySystemPressure"),
}
ENVELOPE_WIRE = ["type", "eventID", "callID", "recipient", "seq", "occurredAt", "source", "causationID"]
PARAMETERS = {  # ARCHITECTURE.md section 3: parameter -> the events that carry it
    "caller": {"onOutgoingCallSent", "onIncomingCallReceived", "onIncomingCallCanceled", "onIncomingCallTimeout",
               "onIncomingMissedCallClicked"},
    "callee": {"onOutgoingCallRejectedCauseBusy", "onOutgoingCallAccepted", "onOutgoingCallDeclined"},
    "callees": {"onOutgoingCallSent", "onIncomingCallReceived", "onOutgoingCallTimeout", "onIncomingMissedCallClicked"},
    "callType": {"onOutgoingCallSent", "onIncomingCallReceived", "onIncomingMissedCallClicked"},
    "customData": {"onOutgoingCallSent", "onIncomingCallReceived", "onIncomingCallCanceled",
                   "onOutgoingCallRejectedCauseBusy", "onOutgoingCallDeclined", "onIncomingMissedCallClicked"},
    "isVideoCall": {"onOutgoingCallTimeout"}, "userInfos": {"onInvitationUserStateChanged"},
    "user": {"onEnter", "onLeave", "onRemoteCameraExceptionOccurred", "onRemoteMicrophoneExceptionOccurred"},
    "exception": {"onLocalCameraExceptionOccurred", "onLocalMicrophoneExceptionOccurred",
                  "onRemoteCameraExceptionOccurred", "onRemoteMicrophoneExceptionOccurred"},
    "isOpened": {"onCameraStateChanged", "onMicrophoneStateChanged"}, "isFronted": {"onFrontFacingCameraStateChanged"},
    "audioRoute": {"onAudioOutputChanged"}, "error": {"onError"},
    "reason": {"onCallEnd", "onStateChanged"}, "kickerUserID": {"onCallEnd"},
    "errorCode": {"onStateChanged"}, "extendedData": {"onStateChanged"}, "confirmed": {"onHangUpConfirmation"},
}


def sample(name: str) -> events.Event:
    cls = events.BY_NAME[name]
    return cls(**ENVELOPE, source=SOURCE.get(cls.category, Source.device_monitor), **PARAMS[name])


def wire_json(name: str) -> dict:
    return msgspec.json.decode(events.encode_event(sample(name)))


def test_every_event_has_a_sample():
    assert set(PARAMS) == set(events.BY_NAME)


@pytest.mark.parametrize("name", sorted(events.BY_NAME))
def test_event_round_trips(name):
    event = sample(name)
    decoded = events.decode_event(events.encode_event(event))
    assert type(decoded) is events.BY_NAME[name] and decoded == event and decoded.type == name
    assert events.encode_event(decoded) == events.encode_event(event)


@pytest.mark.parametrize("name", sorted(events.BY_NAME))
def test_wire_names_of_envelope_and_parameters(name):
    keys = list(wire_json(name))
    assert set(ENVELOPE_WIRE) <= set(keys) and wire_json(name)["type"] == name
    expected = {param for param, carriers in PARAMETERS.items() if name in carriers}
    assert expected <= set(keys), f"{name} lacks {expected - set(keys)}"
    assert not [k for k in keys if k.endswith("Id")], "the kit spells ids `ID`"
    if name.endswith("ButtonPressed"):  # Function()? in the reference: no parameters
        assert set(keys) == set(ENVELOPE_WIRE)


BAD_EVENTS = [  # (callback, field to replace, bad value, message fragment, path)
    ("onEnter", "user", {"id": 5}, "Expected `str`, got `int`", "$.user.id"),
    ("onIncomingCallReceived", "callees", [{"id": "bob"}, {"name": "x"}], "missing required field `id`", "$.callees[1]"),
    ("onOutgoingCallTimeout", "isVideoCall", "yes", "Expected `bool`, got `str`", "$.isVideoCall"),
    ("onCallEnd", "reason", "abandonedd", "Invalid enum value 'abandonedd'", "$.reason"),
    ("onStateChanged", "errorCode", "0", "Expected `int`, got `str`", "$.errorCode"),
    ("onInvitationUserStateChanged", "userInfos", [{"userID": "b", "state": "x"}], "Invalid enum", "$.userInfos[0].state"),
    ("onError", "error", {"code": "x", "message": "m", "method": "f"}, "Expected `int`", "$.error.code"),
    ("onAudioOutputChanged", "audioRoute", None, "Expected `str`, got `null`", "$.audioRoute"),
    ("onEnter", "seq", "3", "Expected `int`, got `str`", "$.seq"),
    ("onEnter", "callID", "call 42", "matching regex", "$.callID"),
    ("onEnter", "recipient", "b" * 65, "length <= 64", "$.recipient"),
    ("onEnter", "source", "device_monitor", "Invalid enum value", "$.source"),
    ("onEnter", "occurredAt", "2024-05-01 12:00:00", "matching regex", "$.occurredAt"),
    ("onEnter", "type", "onLeaveConfirmation", "Invalid value 'onLeaveConfirmation'", "$.type"),
]


@pytest.mark.parametrize(("name", "field", "value", "message", "path"), BAD_EVENTS)
def test_decoding_rejects_wrong_types_with_the_path(name, field, value, message, path):
    payload = wire_json(name) | {field: value}
    with pytest.raises(msgspec.ValidationError) as refused:
        events.decode_event(msgspec.json.encode(payload))
    assert message in str(refused.value) and str(refused.value).endswith(f"- at `{path}`")


def test_decoding_rejects_a_missing_parameter_and_accepts_a_null_exception():
    payload = wire_json("onCallEnd")
    del payload["reason"]
    with pytest.raises(msgspec.ValidationError, match="missing required field `reason`"):
        events.decode_event(msgspec.json.encode(payload))
    assert events.decode_event(msgspec.json.encode(wire_json("onLocalMicrophoneExceptionOccurred"))).exception is None


@pytest.mark.parametrize("stamp", ["\u0662\u0660\u0662\u0664-05-01T12:00:00.123Z", "2024-05-01T12:00:00.123Z\n"])
def test_decoding_rejects_odd_timestamps(stamp):
    with pytest.raises(msgspec.ValidationError):
        events.decode_event(msgspec.json.encode(wire_json("onEnter") | {"occurredAt": stamp}))


# --- commands ---------------------------------------------------------------------------


def send(**changes) -> dict:
    return {"commandID": "cmd-1", "caller": {"id": "ann"}, "callees": [{"id": "bob"}], "callType": "videoCall"} | changes


ACCEPT = {"commandID": "c1", "callID": "call", "callee": {"id": "bob"}}
KICK = {"commandID": "c1", "callID": "call", "kicker": {"id": "ann"}, "target": {"id": "bob"}}


def refused(cls, payload: dict, path: str) -> str:
    with pytest.raises((msgspec.ValidationError, commands.InvalidCommand)) as caught:
        commands.decode_command(cls, msgspec.json.encode(payload))
    assert str(caught.value).endswith(f"- at `{path}`"), str(caught.value)
    return str(caught.value)


def test_send_defaults_extra_fields_and_rules():
    command = commands.decode_command(commands.Send, msgspec.json.encode(send(future="extra fields are allowed")))
    assert (command.timeoutSeconds, command.customData, command.callID, command.actor.id) == (60, "", None, "ann")
    assert "themself" in refused(commands.Send, send(callees=[{"id": "bob"}, {"id": "ann"}]), "$.callees[1].id")
    assert "twice" in refused(commands.Send, send(callees=[{"id": "bob"}, {"id": "cy"}, {"id": "bob"}]), "$.callees[2].id")
    refused(commands.Send, send(callees=[{"id": f"u{i}"} for i in range(10)]), "$.callees")
    refused(commands.Send, send(callees=[]), "$.callees")
    commands.decode_command(commands.Send, msgspec.json.encode(send(callees=[{"id": f"u{i}"} for i in range(9)])))
    for seconds in (0, 601):
        refused(commands.Send, send(timeoutSeconds=seconds), "$.timeoutSeconds")
    for seconds in (1, 600):
        commands.decode_command(commands.Send, msgspec.json.encode(send(timeoutSeconds=seconds)))


@pytest.mark.parametrize(("ok", "too_long"), [("a" * 4096, "a" * 4097), ("é" * 2048, "é" * 2049), ("€" * 1365, "€" * 1366)])
def test_custom_data_is_limited_to_4096_bytes(ok, too_long):
    for cls, payload in ((commands.Send, send()), (commands.Accept, ACCEPT)):
        commands.decode_command(cls, msgspec.json.encode(payload | {"customData": ok}))
        refused(cls, payload | {"customData": too_long}, "$.customData")


BAD_IDS = [  # (command, payload, field path)
    (commands.Send, send(caller={"id": "ann lee"}), "$.caller.id"),
    (commands.Send, send(callees=[{"id": "zoë"}]), "$.callees[0].id"),
    (commands.Send, send(caller={"id": "a" * 65}), "$.caller.id"),
    (commands.Send, send(callID="c" * 129), "$.callID"),
    (commands.Send, send(callID="call 42"), "$.callID"),
    (commands.Send, send(commandID="cmd 1"), "$.commandID"),
    (commands.Accept, ACCEPT | {"callee": {"id": "bob\t"}}, "$.callee.id"),
    (commands.Accept, ACCEPT | {"callID": "呼叫"}, "$.callID"),
    (commands.Kick, KICK | {"target": {"id": "b" * 65}}, "$.target.id"),
    (commands.Kick, KICK | {"kicker": {"id": ""}}, "$.kicker.id"),
]


@pytest.mark.parametrize(("cls", "payload", "path"), BAD_IDS)
def test_bad_ids_are_refused_naming_the_field(cls, payload, path):
    refused(cls, payload, path)


def test_ids_at_the_byte_limits_are_accepted():
    kit_chars = "~!@#$%^&*()_+=-`;',.<>/\\"
    payload = send(caller={"id": "a" * 64}, callees=[{"id": kit_chars}], callID="c" * 128)
    command = commands.decode_command(commands.Send, msgspec.json.encode(payload))
    assert command.callees[0].id == kit_chars


def test_an_id_with_a_trailing_newline_is_refused():
    refused(commands.Send, send(caller={"id": "ann\n"}), "$.caller.id")


@pytest.mark.parametrize("moment, wire", [
    (datetime(2026, 11, 26, 14, 16, 38, 123999, tzinfo=timezone.utc), "2026-11-26T14:16:38.123Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=timezone.utc), "2026-01-02T03:04:05.000Z"),
    (datetime(2026, 1, 1, 1, 30, 0, 999, tzinfo=timezone(timedelta(hours=2))), "2025-12-31T23:30:00.000Z"),
])
def test_occurred_at_is_utc_with_milliseconds_truncated(moment, wire):
    assert timestamp(moment) == wire
    assert parse_timestamp(wire).astimezone(timezone.utc) == moment.astimezone(timezone.utc).replace(
        microsecond=moment.microsecond // 1000 * 1000)
