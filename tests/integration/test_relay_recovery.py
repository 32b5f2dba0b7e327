"""The outbox relay after a crash: every committed event reaches the stream exactly once."""

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

import nats

from schemas.subjects import Subjects
from services.runtime.bus import ensure_stream
from services.runtime.relay import Relay
from services.runtime.relay_position import RelayPosition
from services.runtime.store import EventStore
from tests.integration.harness import SECRET, token


def stored_event_ids(path: str) -> list[str]:
    store = EventStore("invitation", path)
    try:
        return [event.eventID for _, event in store.events_since(0)]
    finally:
        store.close()


async def wait_until_published(log, expected: list[str], timeout: float = 10.0) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        published = [event.eventID for _, event in await log.events()]
        if len(published) >= len(expected) or asyncio.get_running_loop().time() > deadline:
            return published
        await asyncio.sleep(0.1)


def start_process(settings) -> subprocess.Popen:
    env = {**os.environ, "RINGLOG_NATS_URL": settings.nats_url, "RINGLOG_DATA": str(settings.data_dir),
           "RINGLOG_TOKEN_SECRET": SECRET, "RINGLOG_METRICS_PORT": "0"}
    return subprocess.Popen([sys.executable, "-m", "ringlog", "serve", "invitation"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(client) -> None:
    for _ in range(200):
        try:
            await client.nc.request("$SRV.PING.ringlog-invitation", b"", timeout=0.2)
            return
        except Exception:
            await asyncio.sleep(0.05)
    raise AssertionError("invitation service did not start")


async def test_kill_9_during_a_burst_then_restart(settings, client, log):
    process = start_process(settings)
    try:
        await wait_ready(client)

        async def invite(index: int):
            payload = {"caller": {"id": f"caller{index}"}, "callees": [{"id": f"callee{index}"}], "callType": "voiceCall"}
            try:
                await client.command("invitation", "send", payload, token(f"caller{index}"))
            except Exception:
                pass  # requests in flight when the process dies get no answer

        burst = [asyncio.create_task(invite(i)) for i in range(300)]
        await asyncio.sleep(0.15)
        process.send_signal(signal.SIGKILL)
        process.wait()
        await asyncio.gather(*burst)
    finally:
        if process.poll() is None:
            process.kill()

    committed = stored_event_ids(settings.sqlite_path("invitation"))
    assert committed, "the burst committed nothing before the kill"
    process = start_process(settings)
    try:
        await wait_ready(client)
        published = await wait_until_published(log, committed)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    assert Counter(published) == Counter(committed)  # each committed event exactly once, nothing else
    assert len(set(published)) == len(published)


async def test_published_but_position_not_saved_is_not_published_twice(settings, client, log):
    """A crash after the stream acknowledged a batch but before the position was written."""
    from tests.integration.harness import start_service

    service = await start_service("invitation", settings)
    for index in range(5):
        payload = {"caller": {"id": f"a{index}"}, "callees": [{"id": f"b{index}"}], "callType": "voiceCall"}
        await client.command("invitation", "send", payload, token(f"a{index}"))
    await log.wait_for(10)
    await service.shutdown()

    path = settings.sqlite_path("invitation")
    RelayPosition(path, "invitation").set(0)  # forget everything: as if no position was ever saved
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, Subjects())
        store = EventStore("invitation", path)
        relay = Relay(store, nc, Subjects(), RelayPosition(path, "invitation"))
        await relay.drain()
        assert relay.backlog() == 0
        store.close()
    finally:
        await nc.close()
    published = [event.eventID for _, event in await log.events()]
    assert len(published) == 10 and len(set(published)) == 10
