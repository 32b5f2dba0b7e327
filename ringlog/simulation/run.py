"""One simulation run against a running ringlog: start calls, let them play, check the log.

    result = await simulate("nats://127.0.0.1:4222", secret, Options(users=20, rate=5, duration=3))
    result.ok, result.summary, result.verdict

Order of work: subscribe to the log and note the stream's position; start calls at the
rate for the duration (open loop: a call starts on time whatever the others do); wait
until every call is over; wait until the live subscription has every expected event (or
a time limit); read the stream back from the noted position; compare.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import nats

from ringlog.client import Client
from ringlog.simulation.checker import Expectation, Verdict, check
from ringlog.simulation.display import Progress
from ringlog.simulation.driver import Driver, Stats
from ringlog.simulation.feed import LiveFeed, read_stream, stream_position
from ringlog.simulation.mix import DEFAULT_MIX, Dealer, format_mix, parse_mix
from ringlog.simulation.pool import UserPool
from ringlog.simulation.scripts import Call, Timing, plan
from services.runtime.auth import issue_token
from schemas.subjects import Subjects

SERVICES = ("invitation", "room", "device")


@dataclass(frozen=True)
class Options:
    users: int = 50
    rate: float = 5.0  # calls started per second
    duration: float = 10.0  # seconds during which calls start
    mix: dict[str, int] = field(default_factory=lambda: parse_mix(DEFAULT_MIX))
    arrivals: str = "poisson"  # or "even"
    timing: Timing = Timing()
    seed: int | None = None
    prefix: str = "ringlog"
    quiet: bool = False
    cooldown: float = 0.5  # seconds before a user whose call ended is picked again
    settle: float = 15.0  # how long to wait for the last events once every call is over


@dataclass
class Result:
    summary: dict
    verdict: Verdict
    stats: Stats

    @property
    def ok(self) -> bool:
        return self.summary["ok"]


class Run:
    def __init__(self, client: Client, feed: LiveFeed, secret: str, options: Options, run_id: str):
        self.options = options
        self.rng = random.Random(options.seed)
        self.run_id = run_id
        self.pool = UserPool([f"u{number}-{run_id}" for number in range(1, options.users + 1)], options.cooldown)
        self.dealer = Dealer(options.mix)
        self.stats = Stats()
        self.expect = Expectation()
        tokens: dict[str, str] = {}
        token = lambda user: tokens.get(user) or tokens.setdefault(user, issue_token(secret, user))  # noqa: E731
        self.driver = Driver(client, token, feed, self.stats, self.expect)
        self.tasks: set[asyncio.Task] = set()

    async def start_calls(self) -> None:
        """Open loop: call n starts at its planned time, whatever the calls before it do."""
        loop = asyncio.get_running_loop()
        started, at, number = loop.time(), 0.0, 0
        while at < self.options.duration:
            delay = started + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            number += 1
            self.start_call(number)
            gap = 1.0 / self.options.rate
            at += gap if self.options.arrivals == "even" else self.rng.expovariate(self.options.rate)

    def start_call(self, number: int) -> None:
        outcome = self.dealer.next()
        users, engaged = self._pick(outcome)
        if users is None:
            self.stats.skipped += 1
            return
        call = plan(outcome, f"sim-{self.run_id}-{number}", users[0], tuple(users[1:]),
                    random.Random(self.rng.random()), self.options.timing, callee_engaged=engaged)
        self.stats.started += 1
        task = asyncio.create_task(self._play(call))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _pick(self, outcome: str) -> tuple[list[str] | None, bool]:
        """Caller first; for busy, a callee in another call when there is one."""
        if outcome == "group":
            return self.pool.take(1 + self.rng.randint(2, 4), self.rng) or self.pool.take(3, self.rng), False
        if outcome != "busy":
            return self.pool.take(2, self.rng), False
        caller = self.pool.take(1, self.rng)
        if caller is None:
            return None, False
        target = self.pool.engaged(self.rng, besides=tuple(caller))
        if target is not None:
            return caller + [target], True
        callee = self.pool.take(1, self.rng)
        if callee is None:
            self.pool.give_back(caller)
            return None, False
        return caller + callee, False

    async def _play(self, call: Call) -> None:
        ok = False
        try:
            ok = await self.driver.play(call)
        except asyncio.CancelledError:
            self.stats.error("call did not finish", f"call {call.call_id} ({call.outcome}) still running at the end")
        finally:
            if ok:
                self.stats.finished += 1
                self.stats.outcomes[call.outcome] += 1
            else:
                self.stats.failed += 1
            self.pool.release(call.users, failed=not ok)

    async def finish_calls(self) -> None:
        limit = self.options.timing.timer_wait + self.options.timing.talk[1] + 30.0
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=limit)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


async def _check_services(nc, url: str) -> None:
    for name in SERVICES:
        try:
            await nc.request(f"$SRV.PING.ringlog-{name}", b"", timeout=2.0)
        except Exception:
            raise RuntimeError(f"no {name} service answers on {url}: is ringlog running there?") from None


async def _settle(expect: Expectation, feed: LiveFeed, limit: float) -> None:
    """Until the live subscription has every expected event (or `limit` seconds), then a moment more."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and check(expect, feed.seen, feed.seen).totals.lost:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # late duplicates or unexpected events


async def _quiet(error: Exception) -> None:
    """nats-py prints every connection error with a traceback; a failure to connect is reported once instead."""


async def simulate(url: str, secret: str, options: Options, out: TextIO = sys.stderr) -> Result:
    subjects = Subjects(options.prefix)
    run_id = secrets.token_hex(3)
    is_ours = lambda call_id: call_id.startswith(f"sim-{run_id}-")  # noqa: E731
    try:
        listener = await nats.connect(url, name="ringlog-simulate-feed", max_reconnect_attempts=3, error_cb=_quiet)
    except Exception as error:
        raise RuntimeError(f"cannot connect to NATS at {url}: {error.__class__.__name__} {error}".strip()) from None
    try:
        client = await Client.connect(url, prefix=options.prefix, timeout=10.0, name="ringlog-simulate",
                                      error_cb=_quiet)
    except BaseException:
        await listener.close()
        raise
    try:
        await _check_services(client.nc, url)
        start_seq = await stream_position(listener)
        feed = LiveFeed(listener, subjects, is_ours)
        await feed.start()
        run = Run(client, feed, secret, options, run_id)
        progress = None if options.quiet else Progress(run.stats, feed.per_second, out)
        if progress:
            progress.start()
        started = time.monotonic()
        try:
            await run.start_calls()
            await run.finish_calls()
            duration = time.monotonic() - started
            if progress:
                progress.phase = "checking"
            await _settle(run.expect, feed, options.settle)
            stream = await read_stream(listener, subjects, start_seq, is_ours)
        finally:
            if progress:
                await progress.stop()
        await feed.stop()
        verdict = check(run.expect, stream, feed.seen)
        return Result(_summary(run, verdict, duration, options), verdict, run.stats)
    finally:
        await client.close()
        await listener.close()


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def _summary(run: Run, verdict: Verdict, duration: float, options: Options) -> dict:
    stats, total = run.stats, verdict.totals
    return {
        "calls": stats.started,
        "calls_finished": stats.finished,
        "calls_failed": stats.failed,
        "calls_skipped": stats.skipped,
        "outcomes": {name: stats.outcomes[name] for name in options.mix},
        "users": options.users,
        "rate": options.rate,
        "mix": format_mix(options.mix),
        "commands": stats.commands,
        "retries": stats.retries,
        "events": verdict.events,
        "expected_events": total.expected,
        "lost": total.lost,
        "duplicated": total.duplicated,
        "unexpected": total.unexpected,
        "errors": stats.error_count,
        "cmd_p50_ms": _number(stats.latency_ms(0.50)),
        "cmd_p99_ms": _number(stats.latency_ms(0.99)),
        "duration_s": round(duration, 3),
        "ok": verdict.ok and stats.error_count == 0 and stats.failed == 0,
    }
