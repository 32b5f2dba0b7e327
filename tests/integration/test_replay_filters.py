"""`ringlog replay`: filters return exactly the matching events in log order; re-publishing is fenced."""

import argparse
import asyncio
import io
import json
from datetime import datetime, timezone

import msgspec
import nats
import pytest

from projections.replay import ReplayFilter, _run, check_republish_prefix, parse_since, replay
from projections.synthetic import START, mixed_calls, publish_events
from schemas.enums import Source
from schemas.events import Error, encode_event
from schemas.subjects import Subjects
from schemas.types import ZegoUIKitError
from services.runtime.bus import ensure_stream

SUBJECTS = Subjects()


def error_event(call_id: str, source: Source, index: int) -> Error:
    return Error(eventID=f"err-{index}", callID=call_id, recipient="user1", seq=99, occurredAt="2024-05-01T09:00:00.000Z",
                 source=source, causationID="c", error=ZegoUIKitError(code=1, message="no", method="m"))


@pytest.fixture
async def log(settings):
    """(nc, [(seq, event)]): mixed calls, onError from two services, an id that needs escaping."""
    nc = await nats.connect(settings.nats_url)
    await ensure_stream(nc.jetstream(), SUBJECTS)
    events = mixed_calls(30, seed=31)
    events[5:5] = [error_event("call-31-0", Source.invitation, 1), error_event("call-31-0", Source.room, 2)]
    events += mixed_calls(2, seed=32, prefix="odd.id@x")
    await publish_events(nc, SUBJECTS, events)
    yield nc, list(enumerate(events, start=1))
    await nc.close()


async def replayed(nc, where: ReplayFilter = ReplayFilter(), **options) -> list[tuple[int, str]]:
    return [(m.seq, msgspec.json.decode(m.data)["eventID"]) async for m in replay(nc, SUBJECTS, where, **options)]


def expected(log, keep) -> list[tuple[int, str]]:
    return [(seq, event.eventID) for seq, event in log if keep(event)]


async def test_each_filter_returns_exactly_the_matching_events_in_log_order(log):
    nc, events = log
    assert await replayed(nc) == expected(events, lambda e: True)
    state = next(e for _, e in events if e.type == "onStateChanged")
    enter = [e for _, e in events if e.type == "onEnter"][3]
    cases = [
        (ReplayFilter(callback="onOutgoingCallSent"), lambda e: e.type == "onOutgoingCallSent"),
        (ReplayFilter(callback="onError"), lambda e: e.type == "onError"),
        (ReplayFilter(user="user3"), lambda e: e.recipient == "user3"),
        (ReplayFilter(call="call-31-4"), lambda e: e.callID == "call-31-4"),
        (ReplayFilter(call="odd.id@x-32-1"), lambda e: e.callID == "odd.id@x-32-1"),
        (ReplayFilter(callback="onStateChanged", user=state.recipient),
         lambda e: e.type == "onStateChanged" and e.recipient == state.recipient),
        (ReplayFilter(callback="onEnter", call=enter.callID, user=enter.recipient),
         lambda e: (e.type, e.callID, e.recipient) == ("onEnter", enter.callID, enter.recipient)),
    ]
    for where, keep in cases:
        want = expected(events, keep)
        assert want, where
        assert await replayed(nc, where) == want, where
    assert len(expected(events, lambda e: e.type == "onError")) == 2  # both categories


async def test_from_a_sequence_a_time_and_a_limit(log):
    nc, events = log
    assert await replayed(nc, from_seq=40) == expected(events, lambda e: True)[39:]
    assert await replayed(nc, ReplayFilter(user="user3"), from_seq=100, limit=3) == [
        pair for pair in expected(events, lambda e: e.recipient == "user3") if pair[0] >= 100][:3]
    await asyncio.sleep(0.05)
    boundary = datetime.now(timezone.utc)
    later = mixed_calls(3, seed=33, prefix="later")
    await publish_events(nc, SUBJECTS, later)
    first_later = len(events) + 1
    assert await replayed(nc, since=boundary) == [(seq, e.eventID) for seq, e in enumerate(later, first_later)]


async def test_json_lines_on_stdout(log, settings):
    nc, events = log
    out = io.BytesIO()
    args = argparse.Namespace(callback="onOutgoingCallTimeout", user=None, call=None, since=None, from_seq=None,
                              limit=None, republish=None)
    assert await _run(settings, args, out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    want = expected(events, lambda e: e.type == "onOutgoingCallTimeout")
    assert [(line["seq"], line["event"]["eventID"]) for line in lines] == want
    assert lines[0]["subject"] == SUBJECTS.event(events[want[0][0] - 1][1]) and lines[0]["time"].endswith("+00:00")


async def test_republish_under_a_consumer_prefix(log, settings):
    nc, events = log
    received = []

    async def collect(message) -> None:
        received.append(message)

    subscription = await nc.subscribe("replay1.>", cb=collect)
    args = argparse.Namespace(callback=None, user=None, call="call-31-2", since=None, from_seq=None, limit=None,
                              republish="replay1")
    assert await _run(settings, args, io.BytesIO()) == 0
    await nc.flush()
    await asyncio.sleep(0.1)
    await subscription.unsubscribe()
    want = [(seq, e) for seq, e in events if e.callID == "call-31-2"]
    assert [m.subject for m in received] == ["replay1" + SUBJECTS.event(e)[len("ringlog"):] for _, e in want]
    assert [m.data for m in received] == [encode_event(e) for _, e in want]
    assert [int(m.headers["Ringlog-Stream-Seq"]) for m in received] == [seq for seq, _ in want]
    info = await nc.jetstream().stream_info("RINGLOG_EVENTS")
    assert info.state.last_seq == len(events)  # nothing landed in the log


async def test_a_prefix_the_log_would_capture_is_refused(settings):
    nc = await nats.connect(settings.nats_url)
    try:
        await ensure_stream(nc.jetstream(), SUBJECTS)
        for prefix in ("ringlog", "ringlog.evt", "ringlog.evt.x", "bad prefix", "a.*", "a..b", "a.>", ""):
            with pytest.raises(ValueError):
                await check_republish_prefix(nc, SUBJECTS, prefix)
        for prefix in ("replay", "ringlog.replay", "ringlog.evtx", "team.a.replay"):
            await check_republish_prefix(nc, SUBJECTS, prefix)
    finally:
        await nc.close()


async def test_bad_filters_are_refused(log):
    nc, _ = log
    from schemas.ids import InvalidId

    with pytest.raises(ValueError, match="unknown callback"):
        await replayed(nc, ReplayFilter(callback="onNothing"))
    with pytest.raises(InvalidId, match="--user"):
        await replayed(nc, ReplayFilter(user="a b"))


def test_since_accepts_times_and_durations():
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_since("15m", now) == datetime(2024, 5, 1, 11, 45, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T09:00:00") == START
    assert parse_since("2024-05-01T11:00:00+02:00") == datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        parse_since("yesterday")
