"""Deadlines of many keys on one timer, looked at no more than once a tick.

The invitation service times out ringing invitations and the room service abandons
accepted calls whose callees never came: one deadline per call, hundreds a second under
load, almost all of them settled long before they come due. Waking at each deadline (and
at each new one) cost the room service a task step per acceptance and a timer wake-up
every few milliseconds; here a new deadline later than the next look wakes nobody, and
deadlines that fall due close together are taken in one look. A deadline fires up to one
`tick` late (and up to `idle_wait` late when the clock jumps).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from datetime import datetime, timedelta
from typing import Callable, Generic, TypeVar

K = TypeVar("K")


class Deadlines(Generic[K]):
    def __init__(self, clock: Callable[[], datetime], tick: float = 0.05, idle_wait: float = 1.0):
        self.clock = clock
        self.tick = tick
        self.idle_wait = idle_wait
        self._heap: list[tuple[datetime, K]] = []
        self._next_look: datetime | None = None  # while `wait` waits
        self._sooner = asyncio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, due: datetime, key: K) -> None:
        heapq.heappush(self._heap, (due, key))
        if self._next_look is not None and due < self._next_look:
            self._sooner.set()

    def pop_due(self, now: datetime) -> K | None:
        """The key of a deadline at or before `now` (earliest first), else None."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[1]
        return None

    async def wait(self) -> None:
        """Until the earliest deadline has come, but at least a tick: sooner when a deadline
        earlier than that is added, and no longer than `idle_wait`."""
        now = self.clock()
        seconds = self.idle_wait
        if self._heap:
            seconds = min(seconds, max(self.tick, (self._heap[0][0] - now).total_seconds()))
        self._next_look = now + timedelta(seconds=seconds)
        self._sooner.clear()
        try:
            with contextlib.suppress(asyncio.TimeoutError):  # the usual way out: time to look
                await asyncio.wait_for(self._sooner.wait(), seconds)
        finally:
            self._next_look = None
