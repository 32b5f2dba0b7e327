"""`ringlog bench replay`: how fast the read models rebuild, next to how fast the log reads.

Both figures come from the same stream, measured side by side: a run is first the raw
read rate (an ordered consumer reading every message and doing nothing else; the better
of two reads), then the rebuild rate (the projector's own feed and apply loop writing a
fresh SQLite file until it is sealed, exactly as `ringlog projections rebuild` does).
Each run's ratio compares two measurements taken seconds apart, so a slow spell of the
machine weighs on both; `--runs` (default 3) gives the medians. Without `--nats` the
bench starts its own nats-server in a temporary folder and fills it with `--events`
synthetic events of mixed calls (invitation, room and device events, as the services
write them).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from nats.js.api import DeliverPolicy

from projections.feed import connect_feed_client
from projections.rebuild import rebuild_into
from projections.synthetic import mixed_calls, publish_events
from schemas.subjects import STREAM_NAME, Subjects
from services.runtime import loop

EVENTS_PER_CALL = 11  # a little under the synthetic mix's average, so there are enough to cut at --events


async def raw_read(nc, subjects: Subjects) -> tuple[int, float]:
    """(messages, seconds) for an ordered consumer to receive the whole stream."""
    js = nc.jetstream()
    total = (await js.stream_info(STREAM_NAME)).state.messages
    done = asyncio.Event()
    count = 0

    async def received(msg) -> None:
        nonlocal count
        count += 1
        if count >= total:
            done.set()

    started = time.perf_counter()
    subscription = await js.subscribe(subjects.events_all, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL,
                                      cb=received, pending_msgs_limit=-1, pending_bytes_limit=-1)
    if total:
        await done.wait()
    seconds = time.perf_counter() - started
    await subscription.unsubscribe()
    return count, seconds


async def measure(url: str, prefix: str, workdir: Path, fill: int, out, runs: int = 3) -> dict:
    from services.runtime.bus import ensure_stream

    subjects = Subjects(prefix)
    nc = await connect_feed_client(url, "ringlog-bench")
    try:
        if fill:
            await ensure_stream(nc.jetstream(), subjects)
            print(f"publishing {fill:,} synthetic events ...", file=out, flush=True)
            calls = int(fill / EVENTS_PER_CALL) + 1
            await publish_events(nc, subjects, mixed_calls(calls, seed=int(time.time()))[:fill])
        measured = [await measure_run(nc, subjects, workdir / "bench-rebuild.sqlite", out) for _ in range(runs)]
    finally:
        await nc.close()
    events, raw_rates, rebuild_rates, ratios = (list(column) for column in zip(*measured))
    return {"events": events[0], "raw_read_per_s": round(median(raw_rates), 1),
            "rebuild_per_s": round(median(rebuild_rates), 1), "ratio": round(median(ratios), 3),
            "ratios": [round(ratio, 3) for ratio in ratios], "runs": runs}


async def measure_run(nc, subjects: Subjects, path: Path, out) -> tuple[int, float, float, float]:
    """(events, raw read rate, rebuild rate, their ratio), measured one after the other."""
    reads = [await raw_read(nc, subjects) for _ in range(2)]  # the better of two: a conservative baseline
    events, raw_seconds = min(reads, key=lambda read: read[1])
    raw = events / raw_seconds if raw_seconds else 0.0
    print(f"raw read:  {events:,} events in {raw_seconds:.2f}s = {raw:,.0f} events/s", file=out, flush=True)
    rebuilt = await rebuild_into(nc, subjects, path)
    path.unlink(missing_ok=True)
    rate = rebuilt.per_second
    ratio = rate / raw if raw else 0.0
    print(f"rebuild:   {rebuilt.events:,} events in {rebuilt.seconds:.2f}s = {rate:,.0f} events/s "
          f"({ratio:.2f} of the raw read rate)", file=out, flush=True)
    return events, raw, rate, ratio


def run_bench(nats_url: str | None, prefix: str, events: int, as_json: bool, runs: int = 3) -> int:
    from ringlog.natsserver import NatsServer

    out = sys.stderr if as_json else sys.stdout
    with tempfile.TemporaryDirectory(prefix="ringlog-bench-") as folder:
        workdir = Path(folder)
        server = None if nats_url else NatsServer(workdir / "nats").start()
        try:
            result = loop.run(measure(nats_url or server.url, prefix, workdir, 0 if nats_url else events, out, runs))
        finally:
            if server is not None:
                server.stop()
    print(f"medians of {runs} runs: raw read {result['raw_read_per_s']:,.0f} events/s, rebuild "
          f"{result['rebuild_per_s']:,.0f} events/s, ratio {result['ratio']:.2f} (runs: "
          f"{', '.join(f'{ratio:.2f}' for ratio in result['ratios'])})", file=out)
    if as_json:
        print(json.dumps(result))
    return 0
