"""Exactly-once: events delivered twice, re-published, or a projector killed between write and ack."""

import asyncio
import collections
import os
import signal
import subprocess
import sys

import msgspec
import nats
import pytest

from projections import feed as feed_module
from projections.feed import PullFeed, ephemeral
from projections.main import serve
from projections.pipeline import Pipeline
from projections.projector import Projector
from projections.rebuild import rebuild_into
from projections.store import ProjectionStore
from projections.synthetic import mixed_calls, publish_events
from schemas.events import encode_event
from schemas.subjects import Subjects
from services.runtime.bus import ensure_stream
from tests.integration.test_projection_helpers import caught_up, dump_file, live_file, query, start_projector


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs."""


@pytest.fixture
async def nc(settings):
    connection = await nats.connect(settings.nats_url)
    await ensure_stream(connection.jetstream(), Subjects(settings.prefix))
    yield connection
    await connection.close()


async def assert_equals_a_rebuild(nc, settings, tmp_path) -> dict:
    fresh = tmp_path / "rebuilt.sqlite"
    await rebuild_into(nc, Subjects(settings.prefix), fresh)
    live = dump_file(live_file(settings))
    assert live == dump_file(fresh)
    per_call = collections.Counter(row[1] for row in live["timeline"])
    for call_id, _, _, doc in live["calls"]:  # every event of every call applied exactly once
        assert msgspec.json.decode(doc)["events"] == per_call[call_id]
    return live


async def test_the_whole_log_delivered_again_changes_nothing(nc, settings, tmp_path):
    subjects = Subjects(settings.prefix)
    events = mixed_calls(60, seed=21)
    await publish_events(nc, subjects, events)
    projector = await start_projector(settings)
    await caught_up(nc)
    await projector.shutdown()
    before = dump_file(live_file(settings))

    store = ProjectionStore(live_file(settings))  # every message again, from sequence 1, through the same loop
    applied, handled = 0, 0
    pipeline = Pipeline(Projector(store))
    await ephemeral(nc.jetstream(), "again", subjects.events_all)
    feed = await PullFeed(nc, "again").start()
    while handled < len(events):
        prepared = await pipeline.submit(await feed.take(500, timeout=5))
        applied, handled = applied + prepared.applied, handled + prepared.handled
    await pipeline.close()
    await feed.stop()
    store.close()
    assert (handled, applied) == (len(events), 0)
    assert dump_file(live_file(settings)) == before

    projector = await start_projector(settings)  # the same events re-published past the duplicate window
    try:
        for event in events[:50]:
            await nc.publish(subjects.event(event), encode_event(event), headers={"Nats-Msg-Id": f"late-{event.eventID}"})
        lag = await caught_up(nc)
        assert lag["position"] == len(events) + 50
        assert dump_file(live_file(settings)) == before
    finally:
        await projector.shutdown()


async def test_killed_after_the_write_before_the_ack(nc, settings, tmp_path, monkeypatch):
    subjects = Subjects(settings.prefix)
    await publish_events(nc, subjects, mixed_calls(40, seed=22))
    acked = asyncio.Event()

    async def die(self, message):
        acked.set()
        raise Killed()

    monkeypatch.setattr(feed_module.PullFeed, "ack", die)
    dying = asyncio.create_task(serve(settings, asyncio.Event()))
    with pytest.raises(Killed):
        await asyncio.wait_for(dying, 10)
    assert acked.is_set()
    monkeypatch.undo()
    store = ProjectionStore(live_file(settings))
    committed = store.position()[0]
    store.close()
    assert committed > 0  # the batch was written; its ack never went out

    await publish_events(nc, subjects, mixed_calls(40, seed=23, prefix="later"))
    projector = await start_projector(settings)
    try:
        await caught_up(nc)
        live = await assert_equals_a_rebuild(nc, settings, tmp_path)
        assert len(live["calls"]) == 80
    finally:
        await projector.shutdown()


async def test_sigkill_of_a_projector_process_loses_nothing(nc, settings, tmp_path):
    subjects = Subjects(settings.prefix)
    env = {**os.environ, "RINGLOG_NATS_URL": settings.nats_url, "RINGLOG_DATA": str(settings.data_dir),
           "RINGLOG_TOKEN_SECRET": settings.token_secret, "RINGLOG_METRICS_PORT": "0"}
    child = subprocess.Popen([sys.executable, "-m", "ringlog", "serve", "projections"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                await nc.request("$SRV.PING.ringlog-projections", b"", timeout=0.2)
                break
            except Exception:
                await asyncio.sleep(0.05)
        events = mixed_calls(1500, seed=24)
        publishing = asyncio.create_task(publish_events(nc, subjects, events))
        for _ in range(1000):
            _, lag = await query(nc, "lag")
            if lag["position"] > 500:
                break
            await asyncio.sleep(0.01)
        child.send_signal(signal.SIGKILL)  # mid-stream: between a write and its ack, or anywhere
        child.wait(5)
        await publishing
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert 500 < lag["position"] < len(events)
    projector = await start_projector(settings)
    try:
        await caught_up(nc)
        await assert_equals_a_rebuild(nc, settings, tmp_path)
    finally:
        await projector.shutdown()


async def test_the_durable_consumer_follows_the_files_position(nc, settings):
    from nats.js.api import AckPolicy

    from projections.feed import DURABLE

    js = nc.jetstream()
    await publish_events(nc, Subjects(settings.prefix), mixed_calls(15, seed=25))
    projector = await start_projector(settings)
    await caught_up(nc)
    await projector.shutdown()
    first = await js.consumer_info("RINGLOG_EVENTS", DURABLE)
    assert first.config.ack_policy == AckPolicy.ALL and first.delivered.stream_seq == first.ack_floor.stream_seq
    before = dump_file(live_file(settings))

    projector = await start_projector(settings)  # delivered == position: the consumer is kept
    await projector.shutdown()
    assert (await js.consumer_info("RINGLOG_EVENTS", DURABLE)).created == first.created

    for path in settings.data_dir.glob("projections.sqlite*"):  # the file is lost: start from sequence 1
        path.unlink()
    projector = await start_projector(settings)
    try:
        lag = await caught_up(nc)
        again = await js.consumer_info("RINGLOG_EVENTS", DURABLE)
        assert again.created != first.created and lag["position"] == first.delivered.stream_seq
        assert dump_file(live_file(settings)) == before
    finally:
        await projector.shutdown()
