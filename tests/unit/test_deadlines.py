"""Deadlines: earliest first, one look a tick, and only a sooner deadline wakes the waiter."""

import asyncio
import time
from datetime import datetime, timedelta, timezone

from services.runtime.deadlines import Deadlines

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_due_keys_come_out_earliest_first_and_only_once_due():
    deadlines = Deadlines(lambda: T0)
    for seconds, key in ((3, "c"), (1, "a"), (2, "b")):
        deadlines.add(at(seconds), key)
    assert deadlines.pop_due(at(0.5)) is None
    assert [deadlines.pop_due(at(2)), deadlines.pop_due(at(2)), deadlines.pop_due(at(2))] == ["a", "b", None]
    assert len(deadlines) == 1 and deadlines.pop_due(at(3)) == "c"


async def timed_wait(deadlines: Deadlines, meanwhile=None) -> float:
    started = time.perf_counter()
    waiting = asyncio.create_task(deadlines.wait())
    await asyncio.sleep(0.02)
    if meanwhile:
        meanwhile()
    await waiting
    return time.perf_counter() - started


async def test_a_deadline_later_than_the_next_look_wakes_nobody():
    deadlines = Deadlines(lambda: T0, tick=0.05, idle_wait=0.3)
    elapsed = await timed_wait(deadlines, lambda: deadlines.add(at(10), "later"))
    assert elapsed >= 0.29


async def test_a_sooner_deadline_wakes_the_waiter_at_once():
    deadlines = Deadlines(lambda: T0, tick=0.05, idle_wait=5.0)
    deadlines.add(at(10), "later")
    elapsed = await timed_wait(deadlines, lambda: deadlines.add(at(0.001), "soon"))
    assert elapsed < 1.0


async def test_deadlines_close_together_are_looked_at_once_a_tick():
    deadlines = Deadlines(lambda: T0, tick=0.1, idle_wait=5.0)
    deadlines.add(at(0.001), "almost due")
    elapsed = await timed_wait(deadlines)
    assert 0.09 <= elapsed < 1.0
