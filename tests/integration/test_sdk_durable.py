"""Durable subscribers: resume after a restart, retries, dead letters, duplicates, config updates."""

import asyncio

import pytest

from ringlog.client import Client
from ringlog.delivery import DEAD_LETTER_STREAM, ensure_dead_letter_stream
from schemas.enums import Source, ZegoCallInvitationType
from schemas.events import CALLBACK_NAMES, IncomingCallReceived, encode_event
from schemas.subjects import STREAM_NAME, Subjects
from schemas.types import User
from services.runtime.bus import ensure_stream
from tests.integration.test_sdk_flows import USERS, sdk_client, wait_for

FAST = {"retry_delay": 0.05, "ack_wait": 5.0}


def record_everything(subscriber, received):
    for name in CALLBACK_NAMES:
        subscriber.subscribe(name, received.append)
    return subscriber


async def some_calls(sdk, prefix, count):
    for index in range(count):
        call = f"{prefix}-{index}"
        await sdk.send_invitation(USERS["alice"], [USERS["bob"], USERS["carol"]], call_id=call)
        await sdk.accept(call, USERS["bob"])
        await sdk.decline(call, USERS["carol"], custom_data=str(index))


async def test_a_stopped_durable_consumer_gets_every_missed_event_once_in_order(services, client, log, settings):
    await services("invitation")
    sdk = sdk_client(client)
    before = []
    first = record_everything(sdk.callbacks(durable="billing", **FAST), before)
    await first.start()
    await some_calls(sdk, "early", 2)
    early = await log.wait_for(18)
    await wait_for(lambda: len(before) == len(early), what="the early events")
    await first.stop()

    await some_calls(sdk, "late", 3)  # nobody is listening now
    found = await log.wait_for(18 + 27)
    missed = [event for _, event in found[len(early):]]

    restarted = await Client.connect(settings.nats_url, prefix=settings.prefix)  # a new process, as it were
    after = []
    second = record_everything(restarted.callbacks(durable="billing", **FAST), after)
    await second.start()
    try:
        await wait_for(lambda: len(after) >= len(missed), what="the missed events")
        await asyncio.sleep(0.3)  # and nothing more arrives
    finally:
        await second.stop()
        await restarted.close()
    assert [event.eventID for event in before] == [event.eventID for _, event in early]
    assert [event.eventID for event in after] == [event.eventID for event in missed]
    for call in {event.callID for event in missed}:
        seqs = [event.seq for event in after if event.callID == call]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


async def test_failures_are_redelivered_then_dead_lettered_in_order(client, settings):
    js = client.nc.jetstream()
    subjects = Subjects(settings.prefix)
    await ensure_stream(js, subjects)
    await ensure_dead_letter_stream(js, subjects)
    attempts, handled = {}, []

    def flaky(callID, caller, callType, callees, customData):
        attempts[callID] = attempts.get(callID, 0) + 1
        if callID == "poison" or (callID == "twice" and attempts[callID] <= 2):
            raise RuntimeError(f"cannot handle {callID}")
        handled.append(callID)

    subscriber = client.callbacks(user="bob", durable="flaky", max_deliver=3, **FAST)
    subscriber.invitation_events.onIncomingCallReceived = flaky
    await subscriber.start()
    try:
        for call in ("first", "twice", "poison", "last"):
            await publish_incoming(js, subjects, call)
        await wait_for(lambda: handled == ["first", "twice", "last"], what="the handled calls")
    finally:
        await subscriber.stop()
    assert attempts == {"first": 1, "twice": 3, "poison": 3, "last": 1}
    assert subscriber.delivery.dead_letters == 1

    dead = await js.get_last_msg(DEAD_LETTER_STREAM, "ringlog.dlq.flaky.>")
    assert dead.subject == "ringlog.dlq.flaky.invitation.onIncomingCallReceived.poison.bob"
    assert dead.headers["Ringlog-Deliveries"] == "3" and "cannot handle poison" in dead.headers["Ringlog-Error"]
    assert dead.headers["Ringlog-Subject"] == "ringlog.evt.invitation.onIncomingCallReceived.poison.bob"
    info = await js.consumer_info(STREAM_NAME, "flaky")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_republished_event_is_handled_once(client, settings):
    js = client.nc.jetstream()
    subjects = Subjects(settings.prefix)
    await ensure_stream(js, subjects)
    got = []
    subscriber = client.callbacks(durable="once", **FAST)
    subscriber.subscribe("onIncomingCallReceived", got.append)
    await subscriber.start()
    try:
        event = await publish_incoming(js, subjects, "again")
        # a relay that re-publishes after the stream's duplicate window: a new message, the same event
        await js.publish(subjects.event(event), encode_event(event), headers={"Nats-Msg-Id": "late-copy"})
        await publish_incoming(js, subjects, "next")
        await wait_for(lambda: [e.callID for e in got] == ["again", "next"], what="two events")
        await asyncio.sleep(0.1)
    finally:
        await subscriber.stop()
    assert [e.callID for e in got] == ["again", "next"] and subscriber.duplicates == 1


async def test_a_changed_subscription_updates_the_consumer(client, settings):
    js = client.nc.jetstream()
    await ensure_stream(js, Subjects(settings.prefix))
    one = client.callbacks(durable="changing", user="bob")
    one.subscribe("onIncomingCallReceived", print)
    await one.start()
    await one.stop()
    two = client.callbacks(durable="changing", user="bob")
    two.subscribe("onIncomingCallReceived", print).subscribe("onIncomingCallCanceled", print)
    await two.start()
    await two.stop()
    config = (await js.consumer_info(STREAM_NAME, "changing")).config
    assert sorted(config.filter_subjects) == [
        "ringlog.evt.invitation.onIncomingCallCanceled.*.bob",
        "ringlog.evt.invitation.onIncomingCallReceived.*.bob",
    ]
    with pytest.raises(ValueError):
        client.callbacks(durable="no.dots")


async def publish_incoming(js, subjects, call_id):
    event = IncomingCallReceived(
        eventID=f"evt-{call_id}", callID=call_id, recipient="bob", seq=2, occurredAt="2024-01-01T00:00:00.000Z",
        source=Source.invitation, causationID=f"cmd-{call_id}", caller=User(id="alice"),
        callType=ZegoCallInvitationType.voiceCall, callees=[User(id="bob")],
    )
    await js.publish(subjects.event(event), encode_event(event), headers={"Nats-Msg-Id": event.eventID})
    return event

