"""Invitation flows against a real nats-server: exact events, exact subjects, in log order."""

import asyncio

import pytest

from ringlog.client import CommandError
from tests.integration.harness import summary, token

ALICE, BOB, CAROL, DAN = ({"id": name, "name": name.title()} for name in ("alice", "bob", "carol", "dan"))


async def send(client, callees, call_id="call-1", **extra):
    payload = {"caller": ALICE, "callees": callees, "callType": "videoCall", "callID": call_id, **extra}
    return await client.command("invitation", "send", payload, token("alice"))


async def as_callee(client, verb, user, call_id="call-1", **extra):
    return await client.command("invitation", verb, {"callID": call_id, "callee": user, **extra}, token(user["id"]))


@pytest.fixture
async def invitation(services):
    await services("invitation")


async def test_one_to_one_accept(invitation, client, log):
    sent = await send(client, [BOB], customData="hello")
    await as_callee(client, "received", BOB)
    accepted = await as_callee(client, "accept", BOB)
    assert sent["callID"] == "call-1" and len(sent["eventIDs"]) == 2 and len(accepted["eventIDs"]) == 3

    found = await log.wait_for(6)
    assert [subject for subject, _ in found] == [
        "ringlog.evt.invitation.onOutgoingCallSent.call-1.alice",
        "ringlog.evt.invitation.onIncomingCallReceived.call-1.bob",
        "ringlog.evt.invitation.onInvitationUserStateChanged.call-1.alice",
        "ringlog.evt.invitation.onIncomingCallAcceptButtonPressed.call-1.bob",
        "ringlog.evt.invitation.onOutgoingCallAccepted.call-1.alice",
        "ringlog.evt.invitation.onInvitationUserStateChanged.call-1.alice",
    ]
    events = [event for _, event in found]
    assert events[1].customData == "hello" and events[1].caller.id == "alice"
    assert [info.state.value for info in events[2].userInfos] == ["received"]
    assert events[4].callee.id == "bob"
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    assert [event.eventID for event in events[3:]] == accepted["eventIDs"]


async def test_decline(invitation, client, log):
    await send(client, [BOB])
    await as_callee(client, "decline", BOB, customData="not now")
    found = await log.wait_for(5)
    assert summary(found) == [
        ("onOutgoingCallSent", "alice"),
        ("onIncomingCallReceived", "bob"),
        ("onIncomingCallDeclineButtonPressed", "bob"),
        ("onOutgoingCallDeclined", "alice"),
        ("onInvitationUserStateChanged", "alice"),
    ]
    assert found[3][1].customData == "not now"


async def test_decline_busy_and_busy_at_send(invitation, client, log):
    await send(client, [BOB])
    await as_callee(client, "decline", BOB, reason="busy")
    # bob is no longer ringing; carol rings on call-2, so a third call to carol finds her busy
    await client.command("invitation", "send", {"caller": DAN, "callees": [CAROL], "callType": "voiceCall", "callID": "call-2"}, token("dan"))
    await client.command("invitation", "send", {"caller": BOB, "callees": [CAROL], "callType": "voiceCall", "callID": "call-3"}, token("bob"))
    found = await log.wait_for(8)
    assert summary(found) == [
        ("onOutgoingCallSent", "alice"),
        ("onIncomingCallReceived", "bob"),
        ("onOutgoingCallRejectedCauseBusy", "alice"),
        ("onInvitationUserStateChanged", "alice"),
        ("onOutgoingCallSent", "dan"),
        ("onIncomingCallReceived", "carol"),
        ("onOutgoingCallSent", "bob"),
        ("onOutgoingCallRejectedCauseBusy", "bob"),
    ]
    assert found[-1][0] == "ringlog.evt.invitation.onOutgoingCallRejectedCauseBusy.call-3.bob"


async def test_cancel_only_before_accept(invitation, client, log):
    await send(client, [BOB, CAROL])
    await client.command("invitation", "cancel", {"callID": "call-1", "caller": ALICE}, token("alice"))
    found = await log.wait_for(8)
    assert summary(found) == [
        ("onOutgoingCallSent", "alice"),
        ("onIncomingCallReceived", "bob"),
        ("onIncomingCallReceived", "carol"),
        ("onOutgoingCallCancelButtonPressed", "alice"),
        ("onIncomingCallCanceled", "bob"),
        ("onInvitationUserStateChanged", "bob"),
        ("onIncomingCallCanceled", "carol"),
        ("onInvitationUserStateChanged", "carol"),
    ]
    with pytest.raises(CommandError) as refused:
        await as_callee(client, "accept", BOB)
    assert (refused.value.status, refused.value.code) == (409, "call_canceled")
    after = await log.wait_for(9)
    assert summary(after[8:]) == [("onError", "bob")]
    assert after[8][0] == "ringlog.evt.invitation.onError.call-1.bob"
    assert after[8][1].error.code == 301003004


async def test_cancel_after_accept_is_refused(invitation, client, log):
    await send(client, [BOB, CAROL])
    await as_callee(client, "accept", BOB)
    with pytest.raises(CommandError) as refused:
        await client.command("invitation", "cancel", {"callID": "call-1", "caller": ALICE}, token("alice"))
    assert (refused.value.status, refused.value.code) == (409, "already_accepted")
    with pytest.raises(CommandError) as not_caller:
        await client.command("invitation", "cancel", {"callID": "call-1", "caller": BOB}, token("bob"))
    assert (not_caller.value.status, not_caller.value.code) == (403, "not_the_caller")
    found = await log.wait_for(9)
    errors = [(event.recipient, event.error.code) for _, event in found if event.type == "onError"]
    assert errors == [("alice", 301003002), ("bob", 301003002)]


async def test_timeout_fires_within_a_second(invitation, client, log):
    await send(client, [BOB], timeoutSeconds=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    found = await log.wait_for(5, timeout=4)
    elapsed = loop.time() - started
    assert summary(found) == [
        ("onOutgoingCallSent", "alice"),
        ("onIncomingCallReceived", "bob"),
        ("onIncomingCallTimeout", "bob"),
        ("onOutgoingCallTimeout", "alice"),
        ("onInvitationUserStateChanged", "alice"),
    ]
    assert elapsed < 2.0
    assert found[3][1].isVideoCall is True and [u.id for u in found[3][1].callees] == ["bob"]
    await asyncio.sleep(1.2)
    assert len(await log.events()) == 5  # never twice


async def test_group_partial_accept(invitation, client, log):
    await send(client, [BOB, CAROL, DAN], timeoutSeconds=1)
    await as_callee(client, "accept", BOB)
    await as_callee(client, "decline", CAROL)
    found = await log.wait_for(17, timeout=4)
    callbacks = summary(found)
    assert callbacks[:4] == [
        ("onOutgoingCallSent", "alice"),
        ("onIncomingCallReceived", "bob"),
        ("onIncomingCallReceived", "carol"),
        ("onIncomingCallReceived", "dan"),
    ]
    assert ("onOutgoingCallAccepted", "alice") in callbacks
    assert ("onOutgoingCallDeclined", "alice") in callbacks
    assert ("onIncomingCallTimeout", "dan") in callbacks
    assert ("onIncomingCallTimeout", "bob") not in callbacks
    timeout = next(event for _, event in found if event.type == "onOutgoingCallTimeout")
    assert [user.id for user in timeout.callees] == ["dan"]


async def test_missed_call_click_dials_back(invitation, client, log):
    await send(client, [BOB], timeoutSeconds=1)
    await log.wait_for(5, timeout=4)
    reply = await client.command("invitation", "missed_call_click", {"callID": "call-1", "user": BOB}, token("bob"))
    dial_back = reply["dialBackCallID"]
    assert dial_back and dial_back != "call-1"
    found = await log.wait_for(8)
    assert summary(found[5:]) == [
        ("onIncomingMissedCallClicked", "bob"),
        ("onOutgoingCallSent", "bob"),
        ("onIncomingCallReceived", "alice"),
    ]
    assert found[6][1].callID == dial_back and found[7][1].caller.id == "bob"


async def test_dial_back_failure_is_reported(invitation, client, log):
    await send(client, [BOB], timeoutSeconds=1)
    await log.wait_for(5, timeout=4)
    # bob is now ringing elsewhere, so he cannot dial back
    await client.command("invitation", "send", {"caller": DAN, "callees": [BOB], "callType": "voiceCall", "callID": "call-2"}, token("dan"))
    reply = await client.command("invitation", "missed_call_click", {"callID": "call-1", "user": BOB}, token("bob"))
    assert reply["dialBackCallID"] is None
    found = await log.wait_for(9)
    assert summary(found[7:]) == [("onIncomingMissedCallClicked", "bob"), ("onIncomingMissedCallDialBackFailed", "bob")]


async def test_duplicate_command_id(invitation, client, log):
    payload = {"commandID": "cmd-1", "caller": ALICE, "callees": [BOB], "callType": "voiceCall"}
    first = await client.command("invitation", "send", payload, token("alice"))
    again = await client.command("invitation", "send", payload, token("alice"))
    assert first == again
    found = await log.wait_for(2)
    await asyncio.sleep(0.2)
    assert len(await log.events()) == 2
    assert found[0][1].callID == first["callID"]


async def test_timeout_after_restart_fires_once(settings, client, log):
    from tests.integration.harness import start_service

    service = await start_service("invitation", settings)
    await send(client, [BOB], timeoutSeconds=1)
    await log.wait_for(2)
    await service.shutdown()
    await asyncio.sleep(1.2)  # the deadline passes while the service is down

    service = await start_service("invitation", settings)
    found = await log.wait_for(5, timeout=2)
    assert [event.type for _, event in found][2:] == ["onIncomingCallTimeout", "onOutgoingCallTimeout", "onInvitationUserStateChanged"]
    await service.shutdown()

    service = await start_service("invitation", settings)
    await asyncio.sleep(0.5)
    assert len(await log.events()) == 5
    await service.shutdown()
