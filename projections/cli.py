"""Command-line wiring of the read side: `register(subparsers)` adds
calls, call-info, history, missed, replay, `projections rebuild` and `bench replay`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from ringlog.options import add_common_options as _common, print_reply, settings_from as settings_of
from services.runtime.config import Settings


def _paged(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=50, help="items per page (1-500, default 50)")
    parser.add_argument("--cursor", help="nextCursor of the previous page")


async def _ask(settings: Settings, name: str, payload: dict) -> dict:
    from ringlog.client import Client
    from schemas.subjects import Subjects

    client = await Client.connect(settings.nats_url, prefix=settings.prefix)
    try:
        return await client.request(Subjects(settings.prefix).query(name), json.dumps(payload).encode())
    finally:
        await client.close()


def _query(name: str, payload_of):
    def run(args: argparse.Namespace) -> int:
        payload = {key: value for key, value in payload_of(args).items() if value is not None}
        return print_reply(lambda: asyncio.run(_ask(settings_of(args), name, payload)),
                           " (is the projector running? `ringlog serve projections`)", emit)

    return run


def emit(line: str) -> None:
    """Print a line; a reader that went away (`| head`) is not an error."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")


def _page_of(args: argparse.Namespace) -> dict:
    return {"limit": args.limit, "cursor": args.cursor}


def cmd_call_info(args: argparse.Namespace) -> int:
    if args.timeline:
        return _query("timeline", lambda a: {"callID": a.call_id, **_page_of(a)})(args)
    return _query("call", lambda a: {"callID": a.call_id})(args)


def cmd_replay(args: argparse.Namespace) -> int:
    from projections.replay import main

    return main(settings_of(args), args)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from projections.rebuild import main

    return main(settings_of(args))


def cmd_bench_replay(args: argparse.Namespace) -> int:
    from projections.bench import run_bench

    if args.runs < 1:
        raise SystemExit("ringlog bench replay: --runs must be at least 1")
    return run_bench(args.nats, settings_of(args).prefix, args.events, args.json, args.runs)


def add_bench_replay(bench_subparsers) -> None:
    """`bench replay` under an existing `bench` command's subparsers."""
    bench = bench_subparsers.add_parser(
        "replay", help="read-model rebuild rate next to the raw read rate of the same stream")
    bench.add_argument("--events", type=int, default=100_000,
                       help="synthetic events to publish to a private nats-server (ignored with --nats)")
    bench.add_argument("--runs", type=int, default=3,
                       help="raw read and rebuild pairs; the figures are their medians (default 3)")
    bench.add_argument("--json", action="store_true", help="print one JSON object last")
    _common(bench)
    bench.set_defaults(func=cmd_bench_replay)


def register(subparsers) -> None:
    calls = subparsers.add_parser("calls", help="active calls, newest first")
    _paged(calls)
    _common(calls)
    calls.set_defaults(func=_query("active_calls", _page_of))

    info = subparsers.add_parser("call-info", help="one call's full state: ringlog call-info CALL_ID")
    info.add_argument("call_id")
    info.add_argument("--timeline", action="store_true", help="every event of the call instead, in log order")
    _paged(info)
    _common(info)
    info.set_defaults(func=cmd_call_info)

    for name, text in (("history", "a user's calls, newest first"), ("missed", "a user's missed calls")):
        parser = subparsers.add_parser(name, help=f"{text}: ringlog {name} USER")
        parser.add_argument("user")
        _paged(parser)
        _common(parser)
        parser.set_defaults(func=_query(name, lambda a: {"userID": a.user, **_page_of(a)}))

    replay = subparsers.add_parser("replay", help="the log again, filtered: JSON lines or re-published")
    start = replay.add_mutually_exclusive_group()
    start.add_argument("--from-seq", type=int, help="first stream sequence (default: the start of the log)")
    start.add_argument("--since", help="from a time: ISO 8601 (UTC unless given) or a duration ago (90s, 15m, 2h)")
    replay.add_argument("--callback", help="one callback type, e.g. onOutgoingCallAccepted")
    replay.add_argument("--user", help="only events addressed to this user")
    replay.add_argument("--call", help="only events of this call")
    replay.add_argument("--limit", type=int, help="stop after this many events")
    replay.add_argument("--republish", metavar="PREFIX",
                        help="publish to PREFIX + the subject minus the events prefix instead of printing")
    _common(replay)
    replay.set_defaults(func=cmd_replay)

    projections = subparsers.add_parser("projections", help="manage the read models")
    actions = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = actions.add_parser("rebuild", help="rebuild every read model from sequence 1 and swap it in")
    _common(rebuild)
    rebuild.set_defaults(func=cmd_rebuild)

    if "bench" not in subparsers.choices:
        bench = subparsers.add_parser("bench", help="benchmarks")
        add_bench_replay(bench.add_subparsers(dest="bench_command", required=True))
