"""What the user sees: one progress line on stderr while the run goes, then the report."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from typing import Callable, TextIO

from ringlog.simulation.checker import Verdict
from ringlog.simulation.driver import Stats


def _ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f} ms"


def progress_line(stats: Stats, events_per_second: float, elapsed: float, phase: str) -> str:
    return (f"{phase} {elapsed:5.1f}s | calls {stats.started} started, {stats.finished + stats.failed} finished"
            f" | {stats.commands_per_second():.0f} cmd/s | {events_per_second:.0f} events/s"
            f" | errors {stats.error_count}"
            f" | cmd p50 {_ms(stats.latency_ms(0.50, recent=True))} p99 {_ms(stats.latency_ms(0.99, recent=True))}")


class Progress:
    """Refreshes one line (with \\r) every `every` seconds until stopped."""

    def __init__(self, stats: Stats, events_per_second: Callable[[], float], out: TextIO = sys.stderr,
                 every: float = 0.25):
        self.stats = stats
        self.events_per_second = events_per_second
        self.out = out
        self.every = every
        self.phase = "running"
        self.started = time.monotonic()
        self.task: asyncio.Task | None = None
        self.width = 0

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(self.every)

    def draw(self) -> None:
        line = progress_line(self.stats, self.events_per_second(), time.monotonic() - self.started, self.phase)
        self.out.write("\r" + line.ljust(self.width))
        self.out.flush()
        self.width = len(line)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.draw()
            self.out.write("\n")
            self.out.flush()


def report(summary: dict, verdict: Verdict, stats: Stats) -> str:
    """The final report: outcomes, commands, the per-callback check, and the verdict."""
    lines = [f"ringlog simulate: {summary['calls']} calls ({summary['calls_finished']} finished, "
             f"{summary['calls_failed']} failed, {summary['calls_skipped']} skipped) "
             f"in {summary['duration_s']:.1f} s, {summary['users']} users, mix {summary['mix']}"]
    lines.append("  outcomes  " + ", ".join(f"{name} {count}" for name, count in summary["outcomes"].items()))
    lines.append(f"  commands  {summary['commands']} ({summary['retries']} retried), "
                 f"p50 {_ms(summary['cmd_p50_ms'])}, p99 {_ms(summary['cmd_p99_ms'])}")
    if summary["calls_skipped"]:
        lines.append(f"  skipped   {summary['calls_skipped']} calls found too few free users: "
                     "more --users, or a lower --rate, keeps the rate")
    lines.append(f"  errors    {summary['errors']}")
    for what, count in stats.errors.most_common(10):
        lines.append(f"    {count:5d}  {what}, e.g. {stats.examples[what]}")
    width = max([len(name) for name in verdict.rows] + [8])
    lines.append(f"  events    {'callback':<{width}}  expected  stream    live  lost  dup  unexpected")
    rows = list(verdict.rows.items()) + [("total", verdict.totals)]
    for name, row in rows:
        lines.append(f"            {name:<{width}}  {row.expected:8d}  {row.stream:6d}  {row.live:6d}"
                     f"  {row.lost:4d}  {row.duplicated:3d}  {row.unexpected:10d}")
    total = verdict.totals
    if summary["ok"]:
        lines.append("  result    OK: every expected event arrived exactly once (live and on the stream), no errors")
    else:
        lines.append(f"  result    FAILED: {total.lost} lost, {total.duplicated} duplicated, "
                     f"{total.unexpected} unexpected events, {summary['errors']} errors")
    return "\n".join(lines)
