"""`ringlog bench scale` end to end at tiny sizes, and its preload against a real nats-server."""

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timezone

import nats
from nats.js.api import DeliverPolicy

from ringlog.bench.history import History
from ringlog.bench.preload import preload
from schemas.subjects import STREAM_NAME
from tests.integration.harness import env_without_ringlog_settings

KEYS = {
    "small_events", "large_events", "small_cmd_p50_ms", "small_cmd_p99_ms", "large_cmd_p50_ms", "large_cmd_p99_ms",
    "p99_ratio", "history_calls", "rss_mb_empty", "rss_mb_with_history", "rss_growth_mb", "startup_s_empty",
    "startup_s_with_history", "preload_events_per_s",
}


def test_bench_scale_runs_end_to_end_and_prints_the_json_last(tmp_path):
    env = env_without_ringlog_settings()
    done = subprocess.run(
        [sys.executable, "-m", "ringlog", "bench", "scale", "--small", "2000", "--large", "20000",
         "--history-calls", "200", "--commands", "16", "--runs", "1", "--workdir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert KEYS <= set(figures)
    assert figures["small_events"] == 2000 and figures["large_events"] == 20000 and figures["history_calls"] == 200
    assert 1500 < figures["small_events_loaded"] < 2500 and 15000 < figures["large_events_loaded"] < 25000
    assert figures["failed_runs"] == 0 and figures["failed_flows"] == 0 and figures["errors"] == []
    for key in ("small_cmd_p99_ms", "large_cmd_p99_ms", "rss_mb_empty", "rss_mb_with_history", "startup_s_empty",
                "startup_s_with_history"):
        assert figures[key] > 0, key
    assert figures["p99_ratio"] == figures["large_cmd_p99_ms"] / figures["small_cmd_p99_ms"]
    assert figures["p99_ratios"] == [figures["p99_ratio"]]  # one run: its own ratio
    for key in ("small_disk_fsync_stalls", "large_disk_fsync_stalls"):  # the disk each latency phase met
        assert len(figures[key]) == 1 and figures[key][0] >= 0, key
    assert any(line.startswith("set-up") for line in lines)  # the human table
    assert not list(tmp_path.iterdir())  # preloaded folders are removed


async def test_preload_publishes_every_stored_event_once(nats_server, tmp_path):
    now = datetime.now(timezone.utc)
    loaded = await asyncio.to_thread(preload, tmp_path, nats_server.url, calls=25, seed=4, calls_per_chunk=7, now=now)
    expected = [event for chunk in History(25, seed=4, now=now).chunks(7) for write in chunk for event in write.events]
    assert loaded.published == loaded.total_events == len(expected)
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        assert (await js.stream_info(STREAM_NAME)).state.messages == len(expected)
        seen = {}
        subscription = await js.subscribe("ringlog.evt.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        for _ in expected:
            message = await subscription.next_msg(timeout=5)
            seen[message.headers["Nats-Msg-Id"]] = message.data
        await subscription.unsubscribe()
    finally:
        await nc.close()
    assert set(seen) == {event.eventID for event in expected}
    room_events = [event for event in expected if event.source.value == "room"]
    assert json.loads(seen[room_events[0].eventID])["callID"] == room_events[0].callID
