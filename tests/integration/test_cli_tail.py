"""`ringlog tail` prints the events it is asked for, as they arrive or from the start."""

import asyncio
import os
import sys

import pytest

from tests.integration.harness import token


@pytest.fixture
async def invitation(services):
    await services("invitation")


async def tail(settings, *flags: str) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ringlog", "tail", "--nats", settings.nats_url, "--from-start", *flags,
        stdout=asyncio.subprocess.PIPE, env={**os.environ},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 20)
    return out.decode().splitlines()


async def test_tail_filters_by_callback_user_and_call(invitation, client, settings, log):
    for call_id, caller, callee in (("c.1", "ann", "bob"), ("c2", "dan", "carol")):
        await client.command("invitation", "send", {"caller": {"id": caller}, "callees": [{"id": callee}],
                                                    "callType": "voiceCall", "callID": call_id}, token(caller))
    await log.wait_for(4)

    received = await tail(settings, "--callback", "onIncomingCallReceived", "--limit", "2")
    assert [line.split()[1] for line in received] == [
        "ringlog.evt.invitation.onIncomingCallReceived.c%2E1.bob",
        "ringlog.evt.invitation.onIncomingCallReceived.c2.carol",
    ]
    for_carol = await tail(settings, "--user", "carol", "--limit", "1")
    assert '"recipient":"carol"' in for_carol[0]
    of_call = await tail(settings, "--call", "c.1", "--limit", "2")
    assert all(".c%2E1." in line.split()[1] for line in of_call)


async def test_tail_refuses_an_unknown_callback(settings):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ringlog", "tail", "--nats", settings.nats_url, "--callback", "onNothing",
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode != 0 and b"unknown callback 'onNothing'" in err
