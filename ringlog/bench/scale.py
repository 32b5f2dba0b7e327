"""`ringlog bench scale`: do the services slow down, start slower or grow with their history?

Four set-ups, each a data folder and a stream preloaded with finished calls
(`ringlog.bench.preload`: decided by the services' own domains, written straight into the
three SQLite stores and published to the stream, relay positions set):

- empty:   nothing;
- small:   about --small events (10k);
- large:   about --large events (1M);
- history: --history-calls finished calls (100k, about 1.8M events).

For each set-up and run the three services start as child processes (`ringlog.up.Supervisor`,
metrics on free ports) on a private nats-server over a copy of the preloaded folder
(`ringlog.bench.scale_run`). The
start-up time runs from spawning them until every one answers `$SRV.PING` (it includes the
interpreter's start and each service's recovery and catch-up with the log). Then a fixed
workload of whole call flows (`ringlog.bench.flows.FlowDriver`: 8 commands each, new call
and user ids) runs open-loop at a moderate rate; each command's latency is a sample.
Last, the resident memory of each service process (`VmRSS` in /proc/<pid>/status, and its
peak `VmHWM`) with no call active.

Latency: small vs large (`p99_ratio` = large / small). Memory and start-up: empty vs
history. Each figure is the median over --runs runs (set-ups interleaved within a run).
RSS after the workload includes what the allocator kept from a start-up peak (`peak_rss_mb`
is VmHWM): a service that buffered its history while catching up shows it there.

One thing the preload cannot fake: JetStream stamps each message with the time it was
stored, so the preloaded history is minutes old *by stream time* even though its
`occurredAt` is older. A service that positions a consumer by stream time (the room
service reads acceptances from `HORIZON`, one hour, ago) therefore replays all of the
preloaded acceptances here, as it would after a restart within an hour of that much traffic.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ringlog.bench.common import median, private_nats, report
from ringlog.bench.disk import settle
from ringlog.bench.scale_run import PROCESSES, measure_run

COMMANDS_PER_FLOW = 8


@dataclass(frozen=True)
class Setup:
    name: str
    calls: int  # finished calls preloaded
    seed: int = 1  # distinct ids per set-up


@dataclass
class Loaded:
    events: int = 0
    calls: int = 0
    seconds: float = 0.0


def setups(small: int, large: int, history_calls: int) -> list[Setup]:
    from ringlog.bench.history import calls_for_events

    return [Setup("empty", 0), Setup("small", calls_for_events(small), 1),
            Setup("large", calls_for_events(large), 2), Setup("history", history_calls, 3)]


# --- preload and the whole bench -------------------------------------------------------------

def prepare(setup: Setup, template: Path, out) -> Loaded:
    """`template`/data (the three stores) and `template`/nats (the stream) with `setup.calls` calls."""
    from ringlog.bench.preload import preload

    (template / "data").mkdir(parents=True, exist_ok=True)
    if setup.calls == 0:
        return Loaded()
    with private_nats() as server:
        last = [0.0]

        def progress(line: str) -> None:
            if time.perf_counter() - last[0] > 5:
                last[0] = time.perf_counter()
                print(f"  {setup.name}: {line}", file=out, flush=True)

        loaded = preload(template / "data", server.url, calls=setup.calls, seed=setup.seed,
                         progress=progress)
        server.stop()
        shutil.move(str(server.store_dir), str(template / "nats"))
    print(f"  {setup.name}: preloaded {loaded.total_events:,} events of {setup.calls:,} calls in "
          f"{loaded.seconds:.1f}s ({loaded.events_per_s:,.0f} events/s)", file=out, flush=True)
    return Loaded(loaded.total_events, setup.calls, loaded.seconds)


def run_scale(small: int, large: int, history_calls: int, commands: int, runs: int, rate: float,
              workdir: str | None = None, out=sys.stderr) -> tuple[dict, dict]:
    """(figures, per set-up medians)."""
    flows = max(1, math.ceil(commands / COMMANDS_PER_FLOW))
    plan = setups(small, large, history_calls)
    loaded: dict[str, Loaded] = {}
    errors: list[str] = []
    results: dict[str, list[dict]] = {setup.name: [] for setup in plan}
    with tempfile.TemporaryDirectory(prefix="ringlog-bench-scale-", dir=workdir) as root:
        templates = {setup.name: Path(root) / f"template-{setup.name}" for setup in plan}
        print("preloading ...", file=out, flush=True)
        for setup in plan:
            loaded[setup.name] = prepare(setup, templates[setup.name], out)
        for run in range(runs):
            for setup in plan:
                folder = Path(root) / f"run{run}-{setup.name}"
                if run == runs - 1:
                    templates[setup.name].rename(folder)  # the last run may use the template itself
                else:
                    shutil.copytree(templates[setup.name], folder)
                # the disk is done with the copy just written (hundreds of MB for `large`) and the
                # folder removed before it (GBs for `history`) before the services start: their
                # fsyncs in the latency phase would wait behind that
                settled = settle(folder)
                print(f"run {run + 1}/{runs}: {setup.name} ({loaded[setup.name].events:,} events): "
                      f"disk settled in {settled:.1f}s; {flows} flows at {rate:g}/s ...", file=out, flush=True)
                result = measure_run(folder, flows, rate)
                results[setup.name].append(result)
                if "error" in result:
                    errors.append(f"{setup.name} run {run + 1}: {result['error']}")
                    print(f"  FAILED: {result['error']}", file=out, flush=True)
                else:
                    print(f"  start-up {result['startup_s']:.2f}s, p50 {result['cmd_p50_ms']:.2f} ms, "
                          f"p99 {result['cmd_p99_ms']:.2f} ms, RSS {result['rss_mb']:.0f} MB, disk stalls "
                          f"{result['disk_fsync_stalls']} (longest fsync {result['disk_fsync_max_ms']:.0f} ms)",
                          file=out, flush=True)
                shutil.rmtree(folder, ignore_errors=True)
    medians = {name: medians_of([run for run in runs_of if "error" not in run]) for name, runs_of in results.items()}
    for name, values in medians.items():
        values["events"] = loaded[name].events
        values["calls"] = loaded[name].calls
        values["failed_flows"] = sum(run.get("failed_flows", 0) for run in results[name])
        values["failed_runs"] = sum(1 for run in results[name] if "error" in run)
    preload_events = sum(each.events for each in loaded.values())
    preload_seconds = sum(each.seconds for each in loaded.values())
    s, lg, e, h = (medians[name] for name in ("small", "large", "empty", "history"))
    figures = {
        "small_events": small,
        "large_events": large,
        "small_events_loaded": s["events"],
        "large_events_loaded": lg["events"],
        "small_cmd_p50_ms": s["cmd_p50_ms"],
        "small_cmd_p99_ms": s["cmd_p99_ms"],
        "large_cmd_p50_ms": lg["cmd_p50_ms"],
        "large_cmd_p99_ms": lg["cmd_p99_ms"],
        "p99_ratio": ratio(lg["cmd_p99_ms"], s["cmd_p99_ms"]),
        "p50_ratio": ratio(lg["cmd_p50_ms"], s["cmd_p50_ms"]),
        # run by run (small and large run back to back), with the disk stalls each met
        "p99_ratios": [ratio(large_run.get("cmd_p99_ms"), small_run.get("cmd_p99_ms"))
                       for small_run, large_run in zip(results["small"], results["large"])],
        "small_disk_fsync_stalls": [run.get("disk_fsync_stalls") for run in results["small"]],
        "large_disk_fsync_stalls": [run.get("disk_fsync_stalls") for run in results["large"]],
        "history_calls": history_calls,
        "history_events": h["events"],
        "rss_mb_empty": e["rss_mb"],
        "rss_mb_with_history": h["rss_mb"],
        "rss_growth_mb": difference(h["rss_mb"], e["rss_mb"]),
        **{f"rss_growth_mb_{name}": difference(h[f"rss_mb_{name}"], e[f"rss_mb_{name}"]) for name in PROCESSES},
        "peak_rss_mb_empty": e["peak_rss_mb"],
        "peak_rss_mb_with_history": h["peak_rss_mb"],
        **{f"peak_rss_mb_with_history_{name}": h[f"peak_rss_mb_{name}"] for name in PROCESSES},
        "startup_s_empty": e["startup_s"],
        "startup_s_with_history": h["startup_s"],
        **{f"startup_s_with_history_{name}": h[f"startup_s_{name}"] for name in PROCESSES},
        "startup_s_small": s["startup_s"],
        "startup_s_large": lg["startup_s"],
        "commands": flows * COMMANDS_PER_FLOW,
        "flows_per_s": rate,
        "runs": runs,
        "failed_flows": sum(values["failed_flows"] for values in medians.values()),
        "preload_events": preload_events,
        "preload_s": preload_seconds,
        "preload_events_per_s": preload_events / preload_seconds if preload_seconds else 0.0,
        "failed_runs": sum(values["failed_runs"] for values in medians.values()),
        "errors": errors,
    }
    return figures, medians


RUN_KEYS = ("startup_s", *(f"startup_s_{name}" for name in PROCESSES), "cmd_p50_ms", "cmd_p99_ms", "cmd_max_ms",
            "disk_fsync_stalls", "disk_fsync_max_ms", "commands", "failed_flows",
            "rss_mb", *(f"rss_mb_{name}" for name in PROCESSES), "rss_mb_ready",
            "peak_rss_mb", *(f"peak_rss_mb_{name}" for name in PROCESSES))


def medians_of(runs: list[dict]) -> dict:
    """Median of each figure over the runs that finished (None when none did)."""
    return {key: median([run[key] for run in runs]) if runs else None for key in RUN_KEYS}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _shown(value, spec: str) -> str:
    return "failed" if value is None else format(value, spec)


def table(medians: dict) -> str:
    """One line per set-up: what was loaded, start-up, latency, memory (per service)."""
    lines = [f"{'set-up':<8} {'events':>10} {'calls':>8} {'start-up s':>10} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'max ms':>8} {'RSS MB':>8} {'peak MB':>8}   RSS MB inv/room/dev   peak MB inv/room/dev   "
             f"start-up s inv/room/dev"]
    for name, m in medians.items():
        per_service = "/".join(_shown(m[f"rss_mb_{p}"], ".0f") for p in PROCESSES)
        peaks = "/".join(_shown(m[f"peak_rss_mb_{p}"], ".0f") for p in PROCESSES)
        startups = "/".join(_shown(m[f"startup_s_{p}"], ".2f") for p in PROCESSES)
        lines.append(f"{name:<8} {m['events']:>10,} {m['calls']:>8,} {_shown(m['startup_s'], '>10.2f')} "
                     f"{_shown(m['cmd_p50_ms'], '>8.2f')} {_shown(m['cmd_p99_ms'], '>8.2f')} "
                     f"{_shown(m['cmd_max_ms'], '>8.1f')} {_shown(m['rss_mb'], '>8.0f')} "
                     f"{_shown(m['peak_rss_mb'], '>8.0f')}   {per_service:<20} {peaks:<22} {startups}")
    return "\n".join(lines)


def cmd_scale(args: argparse.Namespace) -> int:
    figures, medians = run_scale(args.small, args.large, args.history_calls, args.commands, args.runs, args.rate,
                                 args.workdir)
    print(f"bench scale: medians of {args.runs} run(s), {figures['commands']} commands per set-up "
          f"({args.rate:g} flows/s)")
    print(table(medians))
    report("bench scale: command latency with a small vs a large log; memory and start-up, empty vs history",
           figures, args.json)
    return 0 if figures["failed_flows"] == 0 and figures["failed_runs"] == 0 else 1


def register(suites) -> None:
    """Adds `scale` to the `bench` subcommands."""
    scale = suites.add_parser("scale", help="latency with a small vs a large log; memory and start-up with history")
    scale.add_argument("--small", type=int, default=10_000, help="events in the small log (about; whole calls)")
    scale.add_argument("--large", type=int, default=1_000_000, help="events in the large log (about; whole calls)")
    scale.add_argument("--history-calls", type=int, default=100_000, help="finished calls for the memory set-up")
    scale.add_argument("--commands", type=int, default=2_000, help="latency samples per set-up and run")
    scale.add_argument("--rate", type=float, default=20.0, help="call flows started per second (8 commands each)")
    scale.add_argument("--runs", type=int, default=3, help="figures are medians over runs")
    scale.add_argument("--workdir", default=None, help="where the preloaded folders go (default: the temp folder)")
    scale.add_argument("--json", action="store_true", help="print one JSON object last")
    scale.set_defaults(func=cmd_scale)
