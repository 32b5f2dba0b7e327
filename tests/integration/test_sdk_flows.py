"""Real flows through the invitation, room and device services that produce every callback.

Shared by the SDK tests and the Node.js client test (this module has no tests of its own):
`produce_every_callback` drives calls, rooms and devices so that each of the 28 callback
types (onError in both of its categories) lands on the log at least once.
"""

from __future__ import annotations

import asyncio
import time

from ringlog.client import Client, Conflict, Forbidden
from schemas.subjects import STREAM_NAME, Subjects
from tests.integration.harness import token

USERS = {name: {"id": name, "name": name.title()} for name in
         ("alice", "bob", "carol", "dan", "erin", "frank", "gina", "hank", "ivan", "judy", "kate")}
ROOM_FILTER = Subjects().event_filter(category="room", callback="onStateChanged")


def sdk_client(client: Client) -> Client:
    """The test's client acting for any user: a token provider signs as the acting user."""
    return Client(client.nc, prefix=client.subjects.prefix, token_provider=token)


async def room_views_caught_up(client: Client, timeout: float = 5.0) -> None:
    """Wait until every service's room view (invitation, device) has the log's room events."""
    js = client.nc.jetstream()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = (await js.stream_info(STREAM_NAME)).state.last_seq
        followers = [info for info in await js.consumers_info(STREAM_NAME)
                     if info.config.filter_subject == ROOM_FILTER and info.push_bound]
        if followers and all(info.delivered.stream_seq >= last or info.num_pending == 0 for info in followers):
            await asyncio.sleep(0.05)  # delivered: let the view apply it
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the services' room views did not catch up with the log")


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def settled_events(log, quiet: float = 0.2, timeout: float = 5.0) -> list:
    """The log once nothing new has arrived for `quiet` seconds (the relays publish asynchronously)."""
    deadline = time.monotonic() + timeout
    found = await log.events()
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        again = await log.events()
        if len(again) == len(found):
            return again
        found = again
    raise AssertionError("the log did not settle")


async def start_timeouts(sdk: Client) -> None:
    """Two invitations that time out after 1 s (started first, so the rest overlaps the wait)."""
    u = USERS
    await sdk.send_invitation(u["gina"], [u["hank"]], "videoCall", call_id="call-t1", custom_data="t1", timeout_seconds=1)
    await sdk.send_invitation(u["ivan"], [u["judy"]], "voiceCall", call_id="call-t2", timeout_seconds=1)


async def finish_timeouts(sdk: Client, log) -> None:
    """hank opens his missed call without a server dial-back (his handler's defaultAction dials);
    judy opens hers while ringing elsewhere, so the server's dial-back fails."""
    u = USERS
    await log.wait_for(1, Subjects().event_filter("invitation", "onOutgoingCallTimeout", "call-t2"), timeout=5)
    await log.wait_for(1, Subjects().event_filter("invitation", "onOutgoingCallTimeout", "call-t1"), timeout=5)
    await sdk.missed_call_click("call-t1", u["hank"], dial_back=False)
    await sdk.send_invitation(u["kate"], [u["judy"]], "voiceCall", call_id="call-k")
    failed = await sdk.missed_call_click("call-t2", u["judy"])
    assert failed.dialBackCallID is None and failed.dialBackError


async def invitation_outcomes(sdk: Client) -> None:
    """decline, busy, cancel, and an accept after cancel (invitation onError)."""
    u = USERS
    await sdk.send_invitation(u["dan"], [u["erin"]], call_id="call-d", custom_data="d")
    await sdk.decline("call-d", u["erin"], custom_data="not now")
    await sdk.send_invitation(u["dan"], [u["frank"]], call_id="call-b")
    await sdk.decline("call-b", u["frank"], reason="busy")
    await sdk.send_invitation(u["erin"], [u["frank"]], call_id="call-c", custom_data="c")
    await sdk.cancel("call-c", u["erin"], custom_data="sorry")
    try:
        await sdk.accept("call-c", u["frank"])
        raise AssertionError("accepting a canceled call must be refused")
    except Conflict as refused:
        assert refused.code == "call_canceled"


async def call_in_a_room(sdk: Client, client: Client, log) -> None:
    """alice calls bob; both and carol join; bob's devices; carol kicked; bob's hang-up vetoed
    once by his hook, then done; bob's second hang-up is refused (call onError)."""
    u = USERS
    await sdk.send_invitation(u["alice"], [u["bob"]], "videoCall", call_id="call-a", custom_data="hi")
    await sdk.received("call-a", u["bob"])
    await sdk.accept("call-a", u["bob"])
    for user in ("alice", "bob", "carol"):
        await sdk.join("call-a", u[user])
    await room_views_caught_up(client)
    await sdk.device_report("call-a", u["bob"], camera=True, front_facing_camera=True, microphone=True,
                            audio_route="speaker", camera_exception="deviceOccupied",
                            microphone_exception="permissionNotGranted")
    await sdk.kick("call-a", u["alice"], u["carol"])
    await sdk.report_state("call-a", u["alice"], "Reconnecting", error_code=1002)
    answers = iter([False, True])
    hook = await sdk.on_hang_up_confirmation("bob", lambda callID, user: next(answers))
    try:
        vetoed = await sdk.hang_up("call-a", u["bob"])
        done = await sdk.hang_up("call-a", u["bob"])
    finally:
        await hook.stop()
    assert (vetoed.confirmed, done.confirmed) == (False, True)
    try:
        await sdk.hang_up("call-a", u["bob"])
        raise AssertionError("a second hang-up must be refused")
    except Forbidden as refused:
        assert refused.code == "not_a_member"


async def produce_every_callback(client: Client, log) -> Client:
    sdk = sdk_client(client)
    await start_timeouts(sdk)
    await invitation_outcomes(sdk)
    await call_in_a_room(sdk, client, log)
    await finish_timeouts(sdk, log)
    return sdk
