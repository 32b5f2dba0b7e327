"""`ringlog simulate`: simulated users make calls against ringlog; every event is checked.

    ringlog simulate --users 50 --rate 5 --duration 30                  # against `ringlog up`
    ringlog simulate --embedded --duration 3 --json                     # its own NATS + services
    ringlog simulate --mix accept=70,decline=30 --nats nats://host:4222 --token-secret S

Exit status: 0 when every expected event arrived exactly once and no command failed,
1 otherwise (or when ringlog cannot be reached), 2 for bad arguments. See docs/simulate.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
from pathlib import Path

from ringlog.simulation.mix import DEFAULT_MIX, OUTCOMES, MixError, parse_mix
from ringlog.simulation.scripts import Timing
from services.runtime.config import Settings

EMBEDDED_PROCESSES = ["invitation", "room", "device"]


def _mix(text: str) -> dict[str, int]:
    try:
        return parse_mix(text)
    except MixError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(kind: type):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        return value

    return convert


def _seconds_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN-MAX seconds (e.g. 0.5-3)") from None
    if bounds[0] < 0 or bounds[1] < bounds[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: want 0 <= MIN <= MAX")
    return bounds


def _refuse(message: str):
    """A bad combination of arguments: say so and exit 2, like argparse does."""
    print(f"ringlog simulate: {message}", file=sys.stderr)
    raise SystemExit(2)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="load generator: simulated users make calls; checks that every event arrived once",
        description="Simulated call-kit clients: a pool of users, calls started at a rate, each ending as the "
                    "mix says; afterwards every expected event is checked on the live feed and on the stream.")
    p.add_argument("--users", type=_positive(int), default=50, metavar="N", help="simulated users (default 50)")
    p.add_argument("--rate", type=_positive(float), default=5.0, metavar="R", help="calls started per second (default 5)")
    p.add_argument("--duration", type=_positive(float), default=10.0, metavar="S",
                   help="seconds during which calls start (default 10); running calls then finish")
    p.add_argument("--mix", type=_mix, default=DEFAULT_MIX, metavar="NAME=W,...",
                   help=f"outcome weights, name=weight,... of {', '.join(OUTCOMES)} (default {DEFAULT_MIX})")
    p.add_argument("--arrivals", choices=["poisson", "even"], default="poisson",
                   help="call start spacing: random (poisson, default) or even")
    p.add_argument("--ring-timeout", type=_positive(int), default=3, metavar="S",
                   help="timeoutSeconds of each invitation: how long unanswered calls ring (default 3)")
    p.add_argument("--talk", type=_seconds_range, default="0.5-3", metavar="MIN-MAX",
                   help="seconds an answered call lasts once everyone joined (default 0.5-3)")
    p.add_argument("--seed", type=int, metavar="N", help="random seed, for a repeatable run")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--nats", metavar="URL", help="NATS URL of a running ringlog (default RINGLOG_NATS_URL or nats://127.0.0.1:4222)")
    where.add_argument("--embedded", action="store_true",
                       help="start a nats-server and the invitation, room and device services in a temp folder")
    p.add_argument("--data", metavar="DIR", help="data folder whose token secret signs the tokens (default RINGLOG_DATA or ./data)")
    p.add_argument("--token-secret", metavar="KEY", help="sign tokens with this key (default RINGLOG_TOKEN_SECRET, else --data's)")
    p.add_argument("--prefix", metavar="PREFIX", help="subject prefix (default RINGLOG_PREFIX or ringlog)")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.add_argument("--json", action="store_true", help="print one JSON summary last")
    p.set_defaults(func=cmd_simulate)


def options_from(args: argparse.Namespace, prefix: str):
    """The run's Options from parsed arguments (argparse has already converted --mix and --talk)."""
    from ringlog.simulation.run import Options

    if args.users < 2:
        _refuse("--users must be at least 2 (a call needs two users)")
    if args.ring_timeout > 600:
        _refuse("--ring-timeout must be 600 or less")
    return Options(users=args.users, rate=args.rate, duration=args.duration, mix=args.mix, arrivals=args.arrivals,
                   timing=Timing(ring_timeout=args.ring_timeout, talk=args.talk), seed=args.seed, prefix=prefix,
                   quiet=args.quiet)


def token_secret(args: argparse.Namespace, settings: Settings) -> str:
    """--token-secret, else RINGLOG_TOKEN_SECRET, else the data folder's (which must exist)."""
    if args.token_secret:
        return args.token_secret
    if settings.token_secret:
        return settings.token_secret
    if not (settings.data_dir / "token_secret").exists():
        _refuse(f"no token secret in {settings.data_dir.resolve()}: pass --data DIR (the folder `ringlog up` "
                "uses), --token-secret, or RINGLOG_TOKEN_SECRET; or use --embedded")
    return settings.secret()


def cmd_simulate(args: argparse.Namespace) -> int:
    from ringlog.simulation.run import simulate

    settings = Settings()
    if args.data:
        settings.data_dir = Path(args.data)
    if args.nats:
        settings.nats_url = args.nats
    if args.prefix:
        settings.prefix = args.prefix
    options = options_from(args, settings.prefix)
    if args.embedded and (args.data or args.token_secret):
        _refuse("--embedded runs in its own temp folder with its own secret: drop --data and --token-secret")
    try:
        if args.embedded:
            result = run_embedded(options, settings.prefix)
        else:
            result = asyncio.run(simulate(settings.nats_url, token_secret(args, settings), options))
    except RuntimeError as error:
        print(f"ringlog simulate: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nringlog simulate: interrupted; nothing checked", file=sys.stderr)
        return 130
    from ringlog.simulation.display import report

    print(report(result.summary, result.verdict, result.stats), flush=True)
    if args.json:
        print(json.dumps(result.summary), flush=True)
    return 0 if result.ok else 1


def run_embedded(options, prefix: str):
    """A nats-server and the three services as child processes in a temp folder, for one run."""
    from ringlog.simulation.run import simulate
    from ringlog.up import Supervisor

    with tempfile.TemporaryDirectory(prefix="ringlog-simulate-") as folder:
        secret = secrets.token_urlsafe(32)
        settings = Settings(data_dir=Path(folder), token_secret=secret, prefix=prefix, metrics_port=0)
        supervisor = Supervisor(settings, None, 0, 0, processes=EMBEDDED_PROCESSES)
        try:
            url = supervisor.start()
            if not options.quiet:
                print(f"embedded: nats-server {url} and {', '.join(EMBEDDED_PROCESSES)} in {folder}",
                      file=sys.stderr, flush=True)

            async def ready_then_simulate():
                await supervisor.wait_ready(url)
                return await simulate(url, secret, options)

            return asyncio.run(ready_then_simulate())
        finally:
            supervisor.stop()
