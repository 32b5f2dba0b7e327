"""The simulated users, and which of them are in a call now.

A user in a call is held; it is not picked for a new call until its call is over and a
short cool-down has passed (the invitation service learns that a user left a room from
the log, a few milliseconds later: a user picked again at once could look busy). A busy
call holds its callee a second time, so the callee stays out of new calls until both of
its calls are over. Users of a failed call are set aside for the rest of the run (they
may still be in a room on the server).
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from typing import Callable


class UserPool:
    def __init__(self, users: list[str], cooldown: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.idle = list(users)
        self.holds: Counter = Counter()
        self.cooling: list[tuple[float, str]] = []
        self.set_aside: set[str] = set()
        self.cooldown = cooldown
        self.clock = clock

    def _warm_up(self) -> None:
        now = self.clock()
        while self.cooling and self.cooling[0][0] <= now:
            _, user = heapq.heappop(self.cooling)
            if not self.holds[user] and user not in self.set_aside:
                self.idle.append(user)

    @property
    def free(self) -> int:
        self._warm_up()
        return len(self.idle)

    def take(self, count: int, rng: random.Random) -> list[str] | None:
        """`count` free users, now held; None (and nothing held) when fewer are free."""
        self._warm_up()
        if len(self.idle) < count:
            return None
        taken = []
        for _ in range(count):
            index = rng.randrange(len(self.idle))
            self.idle[index], self.idle[-1] = self.idle[-1], self.idle[index]
            taken.append(self.idle.pop())
        for user in taken:
            self.holds[user] += 1
        return taken

    def engaged(self, rng: random.Random, besides: tuple[str, ...] = ()) -> str | None:
        """A user who is in a call now (held), now held once more; None when nobody is."""
        candidates = [user for user, holds in self.holds.items()
                      if holds and user not in besides and user not in self.set_aside]
        if not candidates:
            return None
        user = rng.choice(candidates)
        self.holds[user] += 1
        return user

    def release(self, users: tuple[str, ...] | list[str], failed: bool = False) -> None:
        """The call of these users is over; each is free again after the cool-down (never, when it failed)."""
        free_at = self.clock() + self.cooldown
        for user in users:
            self.holds[user] -= 1
            if failed:
                self.set_aside.add(user)
            if self.holds[user] <= 0:
                del self.holds[user]
                if user not in self.set_aside:
                    heapq.heappush(self.cooling, (free_at, user))

    def give_back(self, users: list[str]) -> None:
        """Undo a `take` or `engaged` whose call could not start: no cool-down."""
        for user in users:
            self.holds[user] -= 1
            if self.holds[user] <= 0:
                del self.holds[user]
                self.idle.append(user)

    @property
    def in_calls(self) -> int:
        return len(self.holds)
