"""Device-monitor flows against a real nats-server: state events, repeats, exceptions to the room, limits.

Room membership comes from the log: the tests write the room service's onStateChanged
events (Logined / Logout / ReconnectFailed) to the stream themselves, exactly as the room
service does, and wait until the device service's view has been delivered them.
"""

import asyncio
import importlib.util
import itertools
import json
import time

import pytest

from ringlog.client import CommandError
from schemas.enums import Source, ZegoRoomStateChangedReason as RoomReason
from schemas.events import StateChanged, encode_event
from schemas.subjects import STREAM_NAME, Subjects
from services.runtime.bus import ensure_stream
from tests.integration.harness import summary, token

ANN, BOB, CAROL, DAN, ERIN = ({"id": name, "name": name.title()} for name in ("ann", "bob", "carol", "dan", "erin"))
SUBJECT = "ringlog.cmd.device.report"
ROOM_FILTER = Subjects().event_filter(category="room", callback="onStateChanged")
_event_ids = itertools.count(1)


@pytest.fixture
async def device(services):
    await services("device")


async def report(client, user, call_id="call-1", command_id=None, **fields):
    payload = {"callID": call_id, "user": user, **fields}
    if command_id:
        payload["commandID"] = command_id
    return await client.command("device", "report", payload, token(user["id"]))


async def room_state(client, call_id, user, reason):
    """Publish one onStateChanged as the room service writes it; returns its stream sequence."""
    event = StateChanged(
        eventID=f"room-evt-{next(_event_ids)}", callID=call_id, recipient=user["id"], seq=1,
        occurredAt="2024-01-01T00:00:00.000Z", source=Source.room, causationID=f"room-cmd-{user['id']}",
        reason=reason, extendedData={"room_session_id": f"session-{call_id}", "user_name": user["name"]},
    )
    subject = Subjects().event_subject("room", "onStateChanged", call_id, user["id"])
    ack = await client.nc.jetstream().publish(subject, encode_event(event), headers={"Nats-Msg-Id": event.eventID})
    return ack.seq


async def settle(client, sequence, timeout=5.0):
    """Wait until the device service's room view has been delivered the log up to `sequence`."""
    js = client.nc.jetstream()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        followers = [info for info in await js.consumers_info(STREAM_NAME)  # live ones: a reader's linger a while
                     if info.config.filter_subject == ROOM_FILTER and info.push_bound]
        if followers and all(info.delivered.stream_seq >= sequence for info in followers):
            await asyncio.sleep(0.05)  # delivered to the client: let the view apply it
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the room view did not reach stream sequence {sequence}")


async def join(client, call_id, *users):
    for user in users:
        sequence = await room_state(client, call_id, user, RoomReason.Logined)
    await settle(client, sequence)


async def device_events(log, count, timeout=5.0):
    return await log.wait_for(count, Subjects().event_filter(category="audioVideo"), timeout)


async def test_state_changes_write_events_and_repeats_write_nothing(device, client, log):
    first = await report(client, ANN, camera=True, frontFacingCamera=True, microphone=False, audioRoute="speaker")
    again = await report(client, ANN, camera=True, frontFacingCamera=True, microphone=False, audioRoute="speaker")
    part = await report(client, ANN, camera=True, microphone=True)
    assert len(first["eventIDs"]) == 4 and again == {"callID": "call-1", "eventIDs": []}
    assert len(part["eventIDs"]) == 1

    found = await device_events(log, 5)
    assert [subject for subject, _ in found] == [
        "ringlog.evt.audioVideo.onCameraStateChanged.call-1.ann",
        "ringlog.evt.audioVideo.onFrontFacingCameraStateChanged.call-1.ann",
        "ringlog.evt.audioVideo.onMicrophoneStateChanged.call-1.ann",
        "ringlog.evt.audioVideo.onAudioOutputChanged.call-1.ann",
        "ringlog.evt.audioVideo.onMicrophoneStateChanged.call-1.ann",
    ]
    events = [event for _, event in found]
    assert (events[0].isOpened, events[1].isFronted, events[2].isOpened, events[3].audioRoute.value) == (True, True, False, "speaker")
    assert events[4].isOpened is True
    assert [event.seq for event in events] == [1, 2, 3, 4, 5]
    assert {event.source for event in events} == {Source.device_monitor}
    assert [event.eventID for event in events] == first["eventIDs"] + part["eventIDs"]
    await asyncio.sleep(0.2)
    assert len(await log.events()) == 5  # the repeat left nothing behind


async def test_each_user_and_call_has_its_own_device_state(device, client, log):
    await report(client, ANN, camera=True)
    await report(client, BOB, camera=True)
    await report(client, ANN, call_id="call-2", camera=True)
    assert summary(await device_events(log, 3)) == [("onCameraStateChanged", "ann"), ("onCameraStateChanged", "bob"),
                                                   ("onCameraStateChanged", "ann")]


async def test_a_retried_command_gets_its_first_answer(device, client, log):
    first = await report(client, ANN, command_id="dev-1", microphone=True)
    assert await report(client, ANN, command_id="dev-1", microphone=True) == first
    await asyncio.sleep(0.2)
    assert len(await log.events()) == 1


async def test_remote_exceptions_reach_exactly_the_other_members_of_the_room(device, client, log):
    await join(client, "call-1", ANN, BOB, CAROL)
    await join(client, "call-2", DAN, ERIN)
    camera = await report(client, ANN, cameraException="deviceOccupied")
    microphone = await report(client, DAN, call_id="call-2", microphoneException="permissionNotGranted")
    assert len(camera["eventIDs"]) == 3 and len(microphone["eventIDs"]) == 2

    found = await device_events(log, 5)
    assert summary(found) == [
        ("onLocalCameraExceptionOccurred", "ann"),
        ("onRemoteCameraExceptionOccurred", "bob"),
        ("onRemoteCameraExceptionOccurred", "carol"),
        ("onLocalMicrophoneExceptionOccurred", "dan"),
        ("onRemoteMicrophoneExceptionOccurred", "erin"),
    ]
    assert found[1][0] == "ringlog.evt.audioVideo.onRemoteCameraExceptionOccurred.call-1.bob"
    remote = found[2][1]
    assert (remote.user.id, remote.user.name, remote.exception.value) == ("ann", "Ann", "deviceOccupied")
    assert found[4][1].user.id == "dan" and found[4][1].callID == "call-2"
    # the same exception again, with no device change in between, is a repeat
    assert (await report(client, ANN, cameraException="deviceOccupied"))["eventIDs"] == []


async def test_membership_follows_joins_and_leaves(device, client, log):
    await report(client, ANN, microphoneException="generic")  # alone: only the local event
    await join(client, "call-1", ANN, BOB)
    await report(client, ANN, microphoneException="interruption")
    await settle(client, await room_state(client, "call-1", BOB, RoomReason.Logout))
    await join(client, "call-1", CAROL)
    await report(client, ANN, microphoneException="inBackground")
    await settle(client, await room_state(client, "call-1", CAROL, RoomReason.ReconnectFailed))
    await report(client, ANN, microphoneException="generic")

    found = await device_events(log, 6)
    assert summary(found) == [
        ("onLocalMicrophoneExceptionOccurred", "ann"),
        ("onLocalMicrophoneExceptionOccurred", "ann"),
        ("onRemoteMicrophoneExceptionOccurred", "bob"),
        ("onLocalMicrophoneExceptionOccurred", "ann"),
        ("onRemoteMicrophoneExceptionOccurred", "carol"),
        ("onLocalMicrophoneExceptionOccurred", "ann"),
    ]


async def test_membership_present_before_the_service_starts_is_known_when_it_answers(services, client, log):
    await ensure_stream(client.nc.jetstream(), Subjects())
    await room_state(client, "call-1", ANN, RoomReason.Logined)
    await room_state(client, "call-1", BOB, RoomReason.Logined)
    await services("device")  # answers only once its room view has caught up with the log
    await report(client, ANN, cameraException=None)
    assert summary(await device_events(log, 2)) == [("onLocalCameraExceptionOccurred", "ann"),
                                                   ("onRemoteCameraExceptionOccurred", "bob")]


GOOD = {"commandID": "bad-1", "callID": "call-1", "user": {"id": "ann"}, "camera": True}
DROP = "<drop this field>"
FIELDS = "camera, frontFacingCamera, microphone, audioRoute, cameraException, microphoneException"
BAD = [
    ("unknown audio route", {"audioRoute": "loudspeaker"}, "ann", 400, "invalid_field", "$.audioRoute"),
    ("unknown exception", {"cameraException": "onFire"}, "ann", 400, "invalid_field", "$.cameraException"),
    ("camera not a bool", {"camera": "yes"}, "ann", 400, "invalid_field", "$.camera"),
    ("microphone as a number", {"microphone": 1}, "ann", 400, "invalid_field", "$.microphone"),
    ("camera null", {"camera": None}, "ann", 400, "invalid_field", "$.camera"),
    ("user id not a string", {"user": {"id": 7}}, "ann", 400, "invalid_field", "$.user.id"),
    ("bad call id", {"callID": "call 1"}, "ann", 400, "invalid_field", "$.callID"),
    ("empty report", {"camera": DROP}, "ann", 400, "invalid_field", FIELDS),
    ("someone else's report", {}, "bob", 403, "not_token_user", "$.user.id"),
    ("no token", {}, None, 401, "unauthenticated", "Authorization"),
]


@pytest.mark.parametrize("changes, bearer, status, code, named", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
async def test_bad_reports_are_refused_and_write_nothing(device, client, log, changes, bearer, status, code, named):
    payload = {name: value for name, value in {**GOOD, **changes}.items() if value != DROP}
    headers = {"Authorization": f"Bearer {token(bearer)}"} if bearer else None
    reply = await client.nc.request(SUBJECT, json.dumps(payload).encode(), timeout=2, headers=headers)
    assert reply.headers["Nats-Service-Error-Code"] == str(status)
    error = json.loads(reply.data)["error"]
    assert error["code"] == code and named in error["message"]
    # the service keeps answering, and the log holds exactly the good report's event
    ok = await report(client, ANN, command_id="bad-1", camera=True)
    assert len(ok["eventIDs"]) == 1
    found = await log.wait_for(1)
    await asyncio.sleep(0.1)
    assert [event.eventID for _, event in await log.events()] == ok["eventIDs"] == [found[0][1].eventID]


@pytest.mark.parametrize("concurrent", [False, True], ids=["one-by-one", "all-at-once"])
async def test_a_storm_of_identical_reports_is_rate_limited(device, client, log, concurrent):
    await join(client, "call-1", ANN, BOB)
    same = {"camera": True, "cameraException": "zeroCaptureFps"}

    async def one(_):
        try:
            return await report(client, ANN, **same)
        except CommandError as refused:
            return refused

    started = time.perf_counter()
    if concurrent:
        answers = await asyncio.gather(*(one(index) for index in range(200)))
    else:
        answers = [await one(index) for index in range(200)]
    elapsed = time.perf_counter() - started

    limited = [index for index, answer in enumerate(answers) if isinstance(answer, CommandError)]
    answered = [answer for answer in answers if not isinstance(answer, CommandError)]
    writing = [answer for answer in answered if answer["eventIDs"]]
    assert len(writing) == 1 and len(writing[0]["eventIDs"]) == 3  # camera, local + remote exception
    assert all(answers[index].status == 429 and answers[index].code == "rate_limited" for index in limited)
    assert "per second" in answers[limited[0]].message and "'ann'" in answers[limited[0]].message
    repeats_answered = len(answered) - 1
    assert 40 <= repeats_answered <= 40 + 20 * elapsed + 1  # burst 40, then 20 per second
    assert len(limited) == 200 - len(answered) >= 100
    print(f"\nstorm ({'concurrent' if concurrent else 'sequential'}): 200 reports in {elapsed * 1000:.0f} ms, "
          f"1 wrote, {repeats_answered} repeats answered, {len(limited)} got 429")

    # nothing but the first report's events, and the service keeps answering
    assert len(await device_events(log, 3)) == 3
    assert len((await report(client, ANN, camera=False))["eventIDs"]) == 1  # a change is never limited
    assert (await report(client, BOB, microphone=True))["eventIDs"]  # bob has his own bucket
    await asyncio.sleep(0.1)  # two tokens back
    assert (await report(client, ANN, camera=False))["eventIDs"] == []
    await asyncio.sleep(0.2)
    assert len(await log.events(Subjects().event_filter(category="audioVideo"))) == 5


async def last_sequence(client, call_id, user, callback="onStateChanged", category="room"):
    subject = Subjects().event_subject(category, callback, call_id, user["id"])
    return (await client.nc.jetstream().get_last_msg(STREAM_NAME, subject)).seq


@pytest.mark.skipif(importlib.util.find_spec("services.room.main") is None, reason="the room service is not there yet")
async def test_joins_and_hang_ups_through_the_room_service_reach_the_device_view(services, client, log):
    await services("room", "device")
    for user in (ANN, BOB, CAROL):
        await client.command("room", "join", {"callID": "call-9", "user": user}, token(user["id"]))
    await log.wait_for(6, ROOM_FILTER)  # Logining + Logined each
    await settle(client, await last_sequence(client, "call-9", CAROL))
    await report(client, ANN, call_id="call-9", microphoneException="soundLevelTooLow")
    await client.command("room", "hang_up", {"callID": "call-9", "user": BOB}, token("bob"))
    await log.wait_for(7, ROOM_FILTER)  # bob's Logout
    await settle(client, await last_sequence(client, "call-9", BOB))
    await report(client, ANN, call_id="call-9", microphoneException="generic")
    assert summary(await device_events(log, 5)) == [
        ("onLocalMicrophoneExceptionOccurred", "ann"),
        ("onRemoteMicrophoneExceptionOccurred", "bob"),
        ("onRemoteMicrophoneExceptionOccurred", "carol"),
        ("onLocalMicrophoneExceptionOccurred", "ann"),
        ("onRemoteMicrophoneExceptionOccurred", "carol"),
    ]
