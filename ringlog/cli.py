"""The `ringlog` command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys

from schemas.events import CALLBACK_NAMES, categories_of
from services.runtime.auth import issue_token
from ringlog.options import add_common_options, print_reply, settings_from
from services.runtime.config import SettingError, Settings


def cmd_up(args: argparse.Namespace) -> int:
    from ringlog.natsserver import check_nice
    from ringlog.up import run_up

    settings = settings_from(args)
    if args.nats_nice is not None:
        settings.nats_nice = args.nats_nice
    check_nice(settings.nats_nice)  # refused (by `main`) before anything starts
    return run_up(settings, args.nats, args.nats_port, args.metrics_base_port)


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from ringlog.up import MODULES

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = settings_from(args)
    if args.metrics_port is not None:
        settings.metrics_port = args.metrics_port
    run = importlib.import_module(MODULES[args.process]).run
    profile_dir = os.environ.get("RINGLOG_PROFILE_DIR")
    if not profile_dir:
        run(settings)
        return 0
    import cProfile  # diagnostics: a profile per process, written when it stops

    profiler = cProfile.Profile()
    try:
        profiler.runcall(run, settings)
    finally:
        profiler.dump_stats(os.path.join(profile_dir, f"{args.process}.prof"))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from schemas.ids import InvalidId, check_user_id

    try:
        check_user_id(args.user, "USER")
    except InvalidId as error:
        print(f"ringlog token: {error}", file=sys.stderr)
        return 2
    print(issue_token(settings_from(args).secret(), args.user, ttl_seconds=args.ttl))
    return 0


def tail_filter(settings: Settings, callback: str | None, user: str | None, call: str | None) -> str:
    from schemas.subjects import Subjects

    if callback is not None and callback not in CALLBACK_NAMES:
        raise SystemExit(f"ringlog tail: unknown callback {callback!r}; one of: {', '.join(CALLBACK_NAMES)}")
    categories = categories_of(callback) if callback else ()
    category = categories[0] if len(categories) == 1 else None
    return Subjects(settings.prefix).event_filter(category, callback, call, user)


async def _tail(settings: Settings, subject: str, from_start: bool, limit: int | None) -> None:
    import nats
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
    subscription = await js.subscribe(subject, ordered_consumer=True, deliver_policy=policy)
    printed = 0
    try:
        async for message in subscription.messages:
            print(f"{message.metadata.sequence.stream} {message.subject} {message.data.decode()}", flush=True)
            printed += 1
            if limit is not None and printed >= limit:
                break
    finally:
        await nc.close()


def cmd_tail(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    subject = tail_filter(settings, args.callback, args.user, args.call)
    try:
        asyncio.run(_tail(settings, subject, args.from_start, args.limit))
    except KeyboardInterrupt:
        pass
    return 0


async def _command(settings: Settings, service: str, verb: str, payload: dict, acting_user: str) -> dict:
    from ringlog.client import Client

    client = await Client.connect(settings.nats_url, issue_token(settings.secret(), acting_user), settings.prefix)
    try:
        return await client.command(service, verb, payload)
    finally:
        await client.close()


def _run_command(args: argparse.Namespace, service: str, verb: str, payload: dict, acting_user: str) -> int:
    return print_reply(lambda: asyncio.run(_command(settings_from(args), service, verb, payload, acting_user)))


def cmd_cmd(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as error:
        print(f"ringlog cmd: payload is not JSON: {error}", file=sys.stderr)
        return 2
    return _run_command(args, args.service, args.verb, payload, args.as_user)


def cmd_invite(args: argparse.Namespace) -> int:
    payload = {
        "caller": {"id": args.caller},
        "callees": [{"id": callee} for callee in args.callees],
        "callType": "videoCall" if args.video else "voiceCall",
        "customData": args.custom_data,
        "timeoutSeconds": args.timeout,
    }
    if args.call:
        payload["callID"] = args.call
    return _run_command(args, "invitation", "send", payload, args.caller)


def _callee_verb(verb: str, field: str, service: str = "invitation"):
    def run(args: argparse.Namespace) -> int:
        payload = {"callID": args.call_id, field: {"id": args.user}}
        if verb == "decline" and args.busy:
            payload["reason"] = "busy"
        return _run_command(args, service, verb, payload, args.user)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ringlog", description="Call-kit events on a NATS JetStream log.")
    sub = parser.add_subparsers(dest="command", required=True)

    common = add_common_options

    up = sub.add_parser("up", help="run everything: embedded NATS, the services, the projector")
    common(up, nats=False)
    group = up.add_mutually_exclusive_group()
    group.add_argument("--nats-port", type=int, default=4222, help="port of the embedded nats-server (default 4222)")
    group.add_argument("--nats", help="use an existing NATS server instead of the embedded one")
    up.add_argument("--metrics-base-port", type=int, default=9310,
                    help="first /metrics port, one per process (0: free ports)")
    up.add_argument("--nats-nice", type=int, default=None,
                    help="run the embedded nats-server this much nicer than ringlog (0-19; "
                         "default RINGLOG_NATS_NICE or 10: docs/performance.md, step 35)")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run one process against an existing NATS")
    serve.add_argument("process", choices=["invitation", "room", "device", "projections"])
    serve.add_argument("--metrics-port", type=int, help="/metrics port (default RINGLOG_METRICS_PORT or a free one)")
    common(serve)
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="print a token for USER signed with the configured secret")
    token.add_argument("user")
    token.add_argument("--ttl", type=int, default=30 * 24 * 3600, help="seconds the token is valid")
    common(token, nats=False)
    token.set_defaults(func=cmd_token)

    tail = sub.add_parser("tail", help="print events as they arrive")
    tail.add_argument("--callback", help="one callback type, e.g. onIncomingCallReceived")
    tail.add_argument("--user", help="only events addressed to this user")
    tail.add_argument("--call", help="only events of this call")
    tail.add_argument("--from-start", action="store_true", help="print the log from its first event")
    tail.add_argument("--limit", type=int, help="stop after this many events")
    common(tail)
    tail.set_defaults(func=cmd_tail)

    cmd = sub.add_parser("cmd", help="send any command: ringlog cmd SERVICE VERB JSON --as USER")
    cmd.add_argument("service")
    cmd.add_argument("verb")
    cmd.add_argument("payload")
    cmd.add_argument("--as", dest="as_user", required=True, help="acting user (a token is signed for it)")
    common(cmd)
    cmd.set_defaults(func=cmd_cmd)

    invite = sub.add_parser("invite", help="send an invitation: ringlog invite CALLER CALLEE...")
    invite.add_argument("caller")
    invite.add_argument("callees", nargs="+")
    invite.add_argument("--video", action="store_true")
    invite.add_argument("--call", help="call id (generated when absent)")
    invite.add_argument("--timeout", type=int, default=60)
    invite.add_argument("--custom-data", default="")
    common(invite)
    invite.set_defaults(func=cmd_invite)

    for verb, field, service, name in (
        ("accept", "callee", "invitation", "accept"),
        ("decline", "callee", "invitation", "decline"),
        ("cancel", "caller", "invitation", "cancel"),
        ("received", "callee", "invitation", "received"),
        ("join", "user", "room", "join"),
        ("hang_up", "user", "room", "hang-up"),
    ):
        p = sub.add_parser(name, help=f"{service}.{verb} as USER: ringlog {name} CALL_ID USER")
        p.add_argument("call_id")
        p.add_argument("user")
        if verb == "decline":
            p.add_argument("--busy", action="store_true", help="decline with reason busy")
        common(p)
        p.set_defaults(func=_callee_verb(verb, field, service))

    from ringlog.bench.cli import register as register_benchmarks

    register_benchmarks(sub)

    import importlib.util

    if importlib.util.find_spec("ringlog.simulate") is not None:
        from ringlog.simulate import register as register_simulate

        register_simulate(sub)

    if importlib.util.find_spec("projections.cli") is not None:
        from projections.cli import register as register_read_side

        register_read_side(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except SettingError as error:
        print(f"ringlog {args.command}: {error}", file=sys.stderr)
        sys.exit(2)
