"""NATS goes away and comes back: services reconnect, the relay catches up, nothing is lost."""

import asyncio
from collections import Counter

from ringlog.client import Client
from tests.integration.harness import token


async def send(client: Client, index: int) -> dict:
    payload = {"commandID": f"send-{index}", "caller": {"id": f"a{index}"}, "callees": [{"id": f"b{index}"}],
               "callType": "voiceCall"}  # a fixed commandID: a retry cannot invite twice
    return await client.command("invitation", "send", payload, token(f"a{index}"))


async def eventually(action, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await action()
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_services_reconnect_and_the_log_stays_exactly_once(services, settings, nats_server, log):
    await services("invitation")
    client = await Client.connect(settings.nats_url)
    answered = []
    for index in range(5):
        answered += (await send(client, index))["eventIDs"]
    await client.close()

    nats_server.stop()  # the whole bus is down for a moment
    await asyncio.sleep(1.0)
    nats_server.start()

    client = await eventually(lambda: Client.connect(settings.nats_url))
    try:
        for index in range(5, 10):
            reply = await eventually(lambda: send(client, index))
            answered += reply["eventIDs"]
    finally:
        await client.close()
    found = await log.wait_for(len(answered), timeout=20)
    on_log = Counter(event.eventID for _, event in found)
    assert set(on_log) == set(answered) and max(on_log.values()) == 1
