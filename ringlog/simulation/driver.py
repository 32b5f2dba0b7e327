"""Plays call scripts as the users' clients would: sends commands (timed), waits for events.

Each command goes out with its own commandID and the acting user's token. A command
nobody answered in time is retried with the same commandID (the services answer a retry
with the first result and write nothing new). Every reply's eventIDs go into the
`Expectation`; a refusal is an error of the run, and the call stops there.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable

from ringlog.bench.common import percentile
from ringlog.client import Client, CommandError, ServiceUnavailable
from ringlog.simulation.checker import Expectation
from ringlog.simulation.feed import LiveFeed
from ringlog.simulation.scripts import Await, Call, Command, Either, Pause, Step, Together


class StepFailed(Exception):
    """A step of a call went wrong (already counted as an error); the call stops."""


@dataclass
class Stats:
    started: int = 0
    finished: int = 0
    failed: int = 0
    skipped: int = 0  # not started: too few free users at that moment
    outcomes: Counter = field(default_factory=Counter)  # finished calls per outcome
    commands: int = 0
    retries: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, every answered command
    recent: deque = field(default_factory=lambda: deque(maxlen=2000))  # the latest latencies
    answered_at: deque = field(default_factory=deque)  # when commands were answered (last second)
    errors: Counter = field(default_factory=Counter)  # "room.join 409 not_a_member" -> count
    examples: dict[str, str] = field(default_factory=dict)  # kind of error -> its first message

    def answered(self, seconds: float) -> None:
        self.commands += 1
        self.latencies.append(seconds)
        self.recent.append(seconds)
        self.answered_at.append(time.monotonic())

    def error(self, what: str, message: str) -> None:
        self.errors[what] += 1
        self.examples.setdefault(what, message)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def commands_per_second(self) -> float:
        cutoff = time.monotonic() - 1.0
        while self.answered_at and self.answered_at[0] < cutoff:
            self.answered_at.popleft()
        return float(len(self.answered_at))

    def latency_ms(self, fraction: float, recent: bool = False) -> float:
        return percentile(list(self.recent) if recent else self.latencies, fraction) * 1000


class Driver:
    def __init__(self, client: Client, token: Callable[[str], str], feed: LiveFeed, stats: Stats,
                 expect: Expectation, retries: int = 2):
        self.client = client
        self.token = token
        self.feed = feed
        self.stats = stats
        self.expect = expect
        self.retries = retries
        self.ids = itertools.count(1)

    async def play(self, call: Call) -> bool:
        """Play the whole script; False when a step failed."""
        try:
            await self._steps(call, call.steps)
        except StepFailed:
            return False
        return True

    async def _steps(self, call: Call, steps: tuple[Step, ...]) -> None:
        for step in steps:
            await self._step(call, step)

    async def _step(self, call: Call, step: Step) -> None:
        if isinstance(step, Command):
            await self.command(call, step)
        elif isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Await):
            if not await self.feed.wait(call.call_id, step.callback, step.recipient, step.within):
                self._missed(call, [step])
        elif isinstance(step, Together):
            results = await asyncio.gather(*(self._steps(call, branch) for branch in step.branches),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        elif isinstance(step, Either):
            waits = [wait for wait, _ in step.cases]
            index = await self.feed.first(call.call_id, [(w.callback, w.recipient) for w in waits],
                                          max(w.within for w in waits))
            if index is None:
                self._missed(call, waits)
            await self._steps(call, step.cases[index][1])
        else:
            raise TypeError(f"not a step: {step!r}")

    def _missed(self, call: Call, waits: list[Await]) -> None:
        wanted = " or ".join(f"{w.callback} for {w.recipient}" for w in waits)
        self.stats.error("event not seen", f"call {call.call_id}: no {wanted} within {waits[0].within:g}s")
        raise StepFailed()

    async def command(self, call: Call, command: Command) -> dict:
        payload = {"commandID": f"{call.call_id}-{next(self.ids)}", "callID": call.call_id, **command.fields}
        started = time.perf_counter()
        for attempt in range(self.retries + 1):
            try:
                reply = await self.client.command(command.service, command.verb, payload, self.token(command.actor))
                break
            except ServiceUnavailable as error:
                if attempt == self.retries:
                    self.stats.error(f"{command.label} unavailable", f"call {call.call_id}: {error}")
                    raise StepFailed() from None
                self.stats.retries += 1
                await asyncio.sleep(0.2)
            except CommandError as error:
                self.stats.answered(time.perf_counter() - started)
                if error.status in (403, 409):
                    self.expect.refused(call.call_id)
                self.stats.error(f"{command.label} {error.status} {error.code}", f"call {call.call_id}: {error.message}")
                raise StepFailed() from None
        self.stats.answered(time.perf_counter() - started)
        self.expect.returned(reply.get("eventIDs", []), command.label)
        if command.verb == "send" and call.timer_events:
            self.expect.timer(call.call_id, dict(call.timer_events))
        return reply
