"""Command-line options every `ringlog` command shares, and the Settings they give."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.runtime.config import Settings


def add_common_options(parser: argparse.ArgumentParser, nats: bool = True) -> None:
    parser.add_argument("--data", help="data folder (default: RINGLOG_DATA or ./data)")
    parser.add_argument("--prefix", help="subject prefix (default: RINGLOG_PREFIX or ringlog)")
    if nats:
        parser.add_argument("--nats", help="NATS URL (default: RINGLOG_NATS_URL or nats://127.0.0.1:4222)")


def settings_from(args: argparse.Namespace) -> Settings:
    """RINGLOG_* environment settings, overridden by the flags given."""
    settings = Settings()
    if getattr(args, "data", None):
        settings.data_dir = Path(args.data)
    if getattr(args, "nats", None):
        settings.nats_url = args.nats
    if getattr(args, "prefix", None):
        settings.prefix = args.prefix
    return settings


def print_reply(call, unavailable_hint: str = "", emit=print) -> int:
    """Run `call()` (a request); print its JSON reply, or the refusal as JSON on stderr. Exit code."""
    import json
    import sys

    from ringlog.client import CommandError, ServiceUnavailable

    try:
        reply = call()
    except CommandError as error:
        print(json.dumps({"error": {"status": error.status, "code": error.code, "message": error.message}}),
              file=sys.stderr)
        return 1
    except ServiceUnavailable as error:
        print(f"ringlog: {error}{unavailable_hint}", file=sys.stderr)
        return 1
    emit(json.dumps(reply))
    return 0
