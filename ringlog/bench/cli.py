"""`ringlog bench bus|flows|scale|replay`: each prints figures; `--json` prints one JSON object last."""

from __future__ import annotations

import argparse

from ringlog.bench.common import median, private_nats, report
from services.runtime import loop
from services.runtime.config import Settings


def cmd_bus(args: argparse.Namespace) -> int:
    from ringlog.bench.bus import measure

    runs = []
    for _ in range(args.runs):
        with private_nats() as server:
            runs.append(loop.run(measure(server.url, args.messages)))
    figures = {
        "messages": args.messages,
        "message_bytes": runs[0]["message_bytes"],
        "runs": args.runs,
        "bus_publish_per_s": median([run["bus_publish_per_s"] for run in runs]),
        "bus_read_per_s": median([run["bus_read_per_s"] for run in runs]),
    }
    report("bench bus: raw nats-py JetStream, medians of runs", figures, args.json)
    return 0


BUS_SAMPLES = 3


def cmd_flows(args: argparse.Namespace) -> int:
    from ringlog.bench.bus import publish_rate
    from ringlog.bench.flows import EVENTS_PER_FLOW, measure as measure_flows
    from ringlog.natsserver import check_nice

    if args.nats_nice is None:
        args.nats_nice = Settings().nats_nice
    check_nice(args.nats_nice)  # a bad value is refused by `ringlog.cli.main`, naming it
    runs = []
    for _ in range(args.runs):
        # one bus sample lasts about a second and single ones vary by a third here: each run's
        # figure is the median of BUS_SAMPLES, each on a fresh server
        samples = []
        for _ in range(BUS_SAMPLES):
            with private_nats() as server:
                samples.append(loop.run(publish_rate(server.url, args.bus_messages)))
        bus = {"bus_publish_per_s": median(samples)}
        # the services' server runs as `ringlog up` runs it; the bus samples on a plain one
        with private_nats(nice=args.nats_nice) as server:
            flows = measure_flows(server.url, args.concurrency, args.duration, args.latency_rate,
                                  nats_pid=server.process.pid if server.process else None,
                                  random_ids=args.random_ids)
        runs.append({**flows, "bus_publish_per_s": bus["bus_publish_per_s"],
                     "ratio": flows["events_per_s"] / bus["bus_publish_per_s"]})
    keys = ("events_per_s", "bus_publish_per_s", "ratio", "flows_per_s", "cmd_p50_ms", "cmd_p99_ms",
            "e2e_p50_ms", "e2e_p99_ms", "full_load_cmd_p99_ms", "half_load_flows_per_s")
    figures = {key: median([run[key] for run in runs]) for key in keys}
    for breakdown in ("cmd_p99_ms_by_command", "full_load_cpu_percent", "half_load_cpu_percent"):  # medians per entry
        figures[breakdown] = {name: median([run[breakdown].get(name, 0.0) for run in runs]) for name in runs[0][breakdown]}
    figures.update(disk_figures(runs))
    figures.update({"lost": sum(run["lost"] for run in runs), "duplicated": sum(run["duplicated"] for run in runs),
                    "failed_flows": sum(run["failed_flows"] for run in runs), "runs": args.runs,
                    "events_per_flow": EVENTS_PER_FLOW, "concurrency": args.concurrency,
                    "nats_nice": args.nats_nice, "random_ids": args.random_ids})
    report("bench flows: calls through invitation, room and device services (medians of runs)", figures, args.json)
    return 0 if figures["lost"] == 0 and figures["duplicated"] == 0 else 1


def disk_figures(runs: list[dict]) -> dict:
    """The disk probe's figures over runs: median p50/p99, the worst wait, every stall."""
    measured = [run for run in runs if run.get("disk_fsyncs")]
    if not measured:
        return {}
    return {"disk_fsyncs": sum(run["disk_fsyncs"] for run in measured),
            "disk_fsync_p50_ms": median([run["disk_fsync_p50_ms"] for run in measured]),
            "disk_fsync_p99_ms": median([run["disk_fsync_p99_ms"] for run in measured]),
            "disk_fsync_max_ms": max(run["disk_fsync_max_ms"] for run in measured),
            "disk_fsync_stalls": sum(run["disk_fsync_stalls"] for run in measured)}


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks that print figures (ratios to the raw bus)")
    suites = bench.add_subparsers(dest="bench_command", required=True)

    bus = suites.add_parser("bus", help="raw nats-py JetStream publish (pipelined) and read rates")
    bus.add_argument("--messages", type=int, default=50_000)
    bus.add_argument("--runs", type=int, default=3)
    bus.add_argument("--json", action="store_true")
    bus.set_defaults(func=cmd_bus)

    flows = suites.add_parser("flows", help="sustained call flows through all services vs the raw bus")
    flows.add_argument("--concurrency", type=int, default=256,
                       help="flows in flight in the full-load phase (256 saturates 2 cores)")
    flows.add_argument("--latency-rate", type=float, default=None,
                       help="flows per second of the latency phase (default: half the full-load rate)")
    flows.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    flows.add_argument("--bus-messages", type=int, default=30_000)
    flows.add_argument("--runs", type=int, default=3)
    flows.add_argument("--nats-nice", type=int, default=None,
                       help="niceness of the services' nats-server, as `ringlog up` gives it (default "
                            "RINGLOG_NATS_NICE or 10); the bus samples run at 0")
    flows.add_argument("--random-ids", action="store_true",
                       help="clients bring their own random (version 4) commandIDs and callIDs, instead of "
                            "the SDK's time-ordered commandIDs and the callIDs the service generates")
    flows.add_argument("--json", action="store_true")
    flows.set_defaults(func=cmd_flows)

    import importlib.util

    if importlib.util.find_spec("ringlog.bench.scale") is not None:
        from ringlog.bench.scale import register as register_scale

        register_scale(suites)
    if importlib.util.find_spec("projections.cli") is not None:
        from projections.cli import add_bench_replay

        add_bench_replay(suites)
