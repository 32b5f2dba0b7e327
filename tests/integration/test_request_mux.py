"""Requests multiplexed on one inbox (services.runtime.requests) on a real nats-server, with
a SinkClient (replies on the sink path, requests as ready-made frames) and with nats-py's own."""

import asyncio
import random

import nats
import pytest
from nats.errors import NoRespondersError, TimeoutError as RequestTimeout

from ringlog.client import Client, Conflict, ServiceUnavailable
from services.runtime import sinks
from services.runtime.bus import connect
from services.runtime.requests import Requests, RequestsClosed, header_value

KINDS = ["sink", "plain"]


async def requester(url: str, kind: str):
    nc = await connect(url, "requester", client=sinks.SinkClient() if kind == "sink" else nats.NATS())
    assert hasattr(nc, "sinks") == (kind == "sink")
    return nc


async def responder(url: str, subject: str, answer, max_delay: float = 0.0, min_delay: float = 0.0):
    """A second connection answering `subject` after a random delay: `answer(msg)` gives (data,
    headers), None for silence. Returns it and the list of the requests it answered."""
    nc = await connect(url, "responder")
    answered = []

    async def respond(msg) -> None:
        await asyncio.sleep(random.uniform(min_delay, max(min_delay, max_delay)))
        reply = answer(msg)
        if reply is not None:
            await nc.publish(msg.reply, reply[0], headers=reply[1])
            answered.append(msg.data)

    async def on_request(msg) -> None:
        asyncio.ensure_future(respond(msg))

    await nc.subscribe(subject, cb=on_request)
    await nc.flush()
    return nc, answered


def echo(msg):
    return msg.data, {"Echo-Subject": msg.subject, "Echo-Auth": (msg.headers or {}).get("Authorization", "")}


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_replies_reach_their_own_callers(nats_server, kind):
    server, _ = await responder(nats_server.url, "echo.*", echo, max_delay=0.05)  # answers in random order
    nc = await requester(nats_server.url, kind)
    requests = Requests(nc)

    async def one(index: int):
        return await requests.request(f"echo.{index % 7}", b"payload-%d" % index, 10,
                                      {"Authorization": f"Bearer token-{index}"})

    replies = await asyncio.gather(*(one(index) for index in range(500)))
    for index, reply in enumerate(replies):
        assert reply.data == b"payload-%d" % index
        assert reply.header("Echo-Subject") == f"echo.{index % 7}"
        assert reply.header("Echo-Auth") == f"Bearer token-{index}"
        assert (reply.raw_headers is not None) == (kind == "sink")
    assert requests.pending == 0
    assert len(getattr(nc, "sinks", {})) == (1 if kind == "sink" else 0)  # one inbox subscription for all
    await nc.close()
    await server.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_no_responders_and_timeout(nats_server, kind):
    silent, _ = await responder(nats_server.url, "silent", lambda msg: None)
    nc = await requester(nats_server.url, kind)
    requests = Requests(nc, sweep_interval=0.02)
    with pytest.raises(NoRespondersError):
        await requests.request("nobody.listens", b"x", 5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RequestTimeout):
        await asyncio.wait_for(requests.request("silent", b"x", 0.2), 2)
    assert 0.2 <= loop.time() - started < 1.0
    gave_up = asyncio.ensure_future(requests.request("silent", b"x", 30))
    await asyncio.sleep(0.05)
    gave_up.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gave_up
    assert requests.pending == 0
    await nc.close()
    await silent.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reply_after_its_timeout_is_ignored(nats_server, kind):
    slow, answered = await responder(nats_server.url, "slow", lambda msg: (b"late", None), min_delay=0.3)
    fast, _ = await responder(nats_server.url, "fast", lambda msg: (b"on time " + msg.data, None))
    nc = await requester(nats_server.url, kind)
    requests = Requests(nc, sweep_interval=0.02)
    with pytest.raises(RequestTimeout):
        await asyncio.wait_for(requests.request("slow", b"1", 0.1), 2)
    received_before = nc.stats["in_msgs"]
    for _ in range(50):
        if answered:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    assert answered == [b"1"] and nc.stats["in_msgs"] == received_before + 1  # the late reply came, unclaimed
    assert (await requests.request("fast", b"2", 5)).data == b"on time 2"
    assert requests.pending == 0
    await nc.close()
    for other in (slow, fast):
        await other.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_reply_headers_are_read_from_the_raw_block(nats_server, kind):
    refusal = {"Nats-Service-Error-Code": "409", "Nats-Service-Error": "already taken: by ann", "Content-Type": "x"}
    server, _ = await responder(nats_server.url, "refuse", lambda msg: (b"{}", refusal))
    nc = await requester(nats_server.url, kind)
    reply = await Requests(nc).request("refuse", b"", 5)
    assert reply.header("Nats-Service-Error-Code") == "409"
    assert reply.header("Nats-Service-Error") == "already taken: by ann"
    assert reply.header("Nats-Service") is None and reply.header("Missing") is None
    if kind == "sink":
        assert reply.headers is None and reply.raw_headers.startswith(b"NATS/1.0\r\n")
    await nc.close()
    await server.close()


def test_header_value_reads_as_nats_py_does():
    block = b"NATS/1.0\r\nA: 1\r\nLong-Name:  spaced value \r\nA:2\r\nUtf: caf\xc3\xa9\r\n\r\n"
    assert [header_value(block, name) for name in ("A", "Long-Name", "Utf", "Long", "a")] == [
        "2", "spaced value", "café", None, None]
    assert header_value(b"NATS/1.0 503\r\n\r\n", "Status") is None and header_value(None, "A") is None


@pytest.mark.parametrize("kind", KINDS)
async def test_closing_fails_the_requests_in_flight(nats_server, kind):
    silent, _ = await responder(nats_server.url, "silent", lambda msg: None)
    nc = await requester(nats_server.url, kind)
    requests = Requests(nc, sweep_interval=0.02)
    waiting = [asyncio.ensure_future(requests.request("silent", b"x", 30)) for _ in range(20)]
    await asyncio.sleep(0.1)
    assert requests.pending == 20
    await requests.close()
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 1)
    assert all(isinstance(result, RequestsClosed) for result in results)

    waiting = [asyncio.ensure_future(requests.request("silent", b"x", 30)) for _ in range(5)]  # subscribes again
    await asyncio.sleep(0.1)
    await nc.close()  # the connection itself closes: the sweep notices
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 1)
    assert all(isinstance(result, RequestsClosed) for result in results)
    await silent.close()


async def test_requests_go_on_after_a_reconnect(nats_server):
    server, _ = await responder(nats_server.url, "echo.*", echo)
    nc = await requester(nats_server.url, "sink")
    requests = Requests(nc)
    assert (await requests.request("echo.1", b"before", 5)).data == b"before"
    nats_server.stop()
    await asyncio.sleep(0.3)
    nats_server.start()
    for _ in range(100):
        if nc.is_connected and server.is_connected:
            break
        await asyncio.sleep(0.1)
    await server.flush()  # its subscription is back on the server
    assert (await requests.request("echo.2", b"after", 5)).data == b"after"  # the inbox was subscribed again
    await nc.close()
    await server.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_the_sdk_client_maps_replies_and_failures_as_before(nats_server, kind):
    refusal = {"Nats-Service-Error-Code": "409", "Nats-Service-Error": "taken"}
    server, _ = await responder(nats_server.url, "ringlog.query.*", lambda msg: (
        (b'{"ok": true}', None) if msg.subject.endswith("ok") else
        (b'{"error": {"code": "taken_code"}}', refusal) if msg.subject.endswith("refuse") else None))
    client = Client(await requester(nats_server.url, kind), timeout=0.2)
    assert await client.query("ok") == {"ok": True}
    with pytest.raises(Conflict) as refused:
        await client.query("refuse")
    assert (refused.value.code, refused.value.message) == ("taken_code", "taken")  # message from the header
    with pytest.raises(ServiceUnavailable, match=r"^no service answers on ringlog.nobody$"):
        await client.with_token("t").request("ringlog.nobody", b"{}")
    assert len(getattr(client.nc, "sinks", {})) == (1 if kind == "sink" else 0)  # with_token shares the inbox
    with pytest.raises(ServiceUnavailable, match=r"^no answer on ringlog.query.silent within 0.2s$"):
        await asyncio.wait_for(client.query("silent"), 2)
    client.timeout = 30
    waiting = asyncio.ensure_future(client.query("silent"))
    await asyncio.sleep(0.1)
    await client.close()
    with pytest.raises(ServiceUnavailable, match="the connection closed"):
        await asyncio.wait_for(waiting, 1)
    await server.close()
