"""The SDK's typed commands, typed errors and the hang-up hook, against the real services."""

import asyncio

import pytest

from ringlog.client import (
    BadRequest, Client, CommandError, Conflict, Forbidden, NotFound, RateLimited, Unauthenticated,
)
from ringlog.replies import CommandReply, HangUpReply, JoinReply, MissedCallClickReply, SendReply
from tests.integration.harness import token
from tests.integration.test_sdk_flows import USERS, sdk_client

ALICE, BOB, CAROL = USERS["alice"], USERS["bob"], USERS["carol"]


async def test_typed_replies(services, client, log):
    await services("invitation", "room")
    sdk = sdk_client(client)
    sent = await sdk.send_invitation("alice", [BOB], "videoCall", custom_data="x")
    assert isinstance(sent, SendReply) and sent.callID and len(sent.eventIDs) == 2
    accepted = await sdk.accept(sent.callID, BOB)
    assert type(accepted) is CommandReply and accepted.callID == sent.callID and len(accepted.eventIDs) == 3
    joined = await sdk.join(sent.callID, ALICE)
    joined = await sdk.join(sent.callID, BOB)
    assert isinstance(joined, JoinReply) and joined.members == ["alice", "bob"] and joined.roomSessionID
    ended = await sdk.hang_up(sent.callID, BOB)
    assert isinstance(ended, HangUpReply) and ended.confirmed is True

    timed = await sdk.send_invitation(CAROL, ["bob"], call_id="missed", timeout_seconds=1)
    await log.wait_for(1, "ringlog.evt.invitation.onOutgoingCallTimeout.missed.carol", timeout=4)
    clicked = await sdk.missed_call_click(timed.callID, BOB)
    assert isinstance(clicked, MissedCallClickReply) and clicked.dialBackCallID and clicked.dialBackError is None
    again = await sdk.missed_call_click(timed.callID, BOB, command_id="click-1")
    assert again.dialBackCallID is None and "already in a call" in again.dialBackError  # his dial-back rings


async def test_typed_errors_keep_status_code_and_message(services, client):
    await services("invitation", "room", "device")
    sdk = sdk_client(client)
    with pytest.raises(Unauthenticated) as missing:
        await Client(client.nc).accept("c1", BOB)
    assert missing.value.status == 401 and missing.value.code == "unauthenticated"
    with pytest.raises(Forbidden) as not_you:
        await sdk.accept("c1", BOB, token=token("alice"))
    assert (not_you.value.status, not_you.value.code) == (403, "not_token_user")
    with pytest.raises(BadRequest) as bad:
        await sdk.send_invitation(ALICE, [], "voiceCall")
    assert bad.value.status == 400 and "$.callees" in bad.value.message
    with pytest.raises(NotFound) as unknown:
        await sdk.hang_up("nowhere", BOB)
    assert unknown.value.status == 404
    await sdk.send_invitation(ALICE, [BOB], call_id="c2")
    await sdk.cancel("c2", ALICE)
    with pytest.raises(Conflict) as late:
        await sdk.accept("c2", BOB)
    assert isinstance(late.value, CommandError) and late.value.code == "call_canceled"

    repeats = [sdk.device_report("c3", BOB, camera=True) for _ in range(60)]
    answers = await asyncio.gather(*repeats, return_exceptions=True)
    limited = [answer for answer in answers if isinstance(answer, CommandError)]
    assert limited and all(isinstance(answer, RateLimited) and answer.status == 429 for answer in limited)


async def test_the_hang_up_hook_answers_for_its_user_only(services, client, log):
    await services("room")
    sdk = sdk_client(client)
    asked = []

    async def onHangUpConfirmation(callID, user):
        asked.append((callID, user.id, user.name))
        return len(asked) > 1  # veto the first hang-up, confirm the second

    hook = await sdk.on_hang_up_confirmation("ann.lee@x", onHangUpConfirmation)
    ann = {"id": "ann.lee@x", "name": "Ann"}
    try:
        for user in (ann, BOB, CAROL):
            await sdk.join("room-1", user)
        assert (await sdk.hang_up("room-1", BOB)).confirmed is True  # bob has no hook: the kit's default
        assert (await sdk.hang_up("room-1", ann)).confirmed is False
        assert (await sdk.hang_up("room-1", ann)).confirmed is True
    finally:
        await hook.stop()
    assert asked == [("room-1", "ann.lee@x", "Ann")] * 2
    found = await log.wait_for(1, "ringlog.evt.call.onHangUpConfirmation.room-1.ann%2Elee%40x")
    assert [event.confirmed for _, event in await log.events("ringlog.evt.call.onHangUpConfirmation.>")] == [
        True, False, True]
    assert found


async def test_a_failing_hook_function_confirms(services, client):
    await services("room")
    sdk = sdk_client(client)

    def broken(callID, user):
        raise RuntimeError("no backend")

    hook = await sdk.on_hang_up_confirmation("bob", broken, call="room-2")
    try:
        await sdk.join("room-2", BOB)
        assert (await sdk.hang_up("room-2", BOB)).confirmed is True
    finally:
        await hook.stop()
