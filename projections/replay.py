"""`ringlog replay`: the log again, from a sequence or a time, filtered, printed or re-published.

Filters are subject filters, so the stream does the filtering: `callback`, `call` and
`user` (the recipient, as in `ringlog tail`). A replay covers what the log holds when it
starts, in log order. With `republish`, each event goes to PREFIX + its subject minus
the events prefix (`ringlog.evt.invitation.X.c.u` -> `PREFIX.evt.invitation.X.c.u`),
with headers naming its stream sequence and original subject; a prefix whose subjects
RINGLOG_EVENTS would capture is refused, so a replay never lands back in the log.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

from nats.aio.client import Client

from projections.feed import PullFeed, connect_feed_client, ephemeral
from projections.projector import Message
from schemas.events import CALLBACK_NAMES, categories_of
from schemas.ids import check_call_id, check_user_id
from schemas.subjects import STREAM_NAME, Subjects

_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_TOKEN = re.compile(r"^[^\s.*>]+$")


@dataclass(frozen=True)
class ReplayFilter:
    callback: str | None = None
    user: str | None = None
    call: str | None = None

    def subject(self, subjects: Subjects) -> str:
        """The stream filter subject; raises ValueError (or InvalidId) naming the bad filter."""
        if self.callback is not None and self.callback not in CALLBACK_NAMES:
            raise ValueError(f"unknown callback {self.callback!r}; one of: {', '.join(CALLBACK_NAMES)}")
        if self.user is not None:
            check_user_id(self.user, "--user")
        if self.call is not None:
            check_call_id(self.call, "--call")
        categories = categories_of(self.callback) if self.callback else ()
        category = categories[0] if len(categories) == 1 else None
        return subjects.event_filter(category, self.callback, self.call, self.user)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise) or a duration ago: 90s, 15m, 2h, 1d."""
    match = _DURATION.match(value.strip())
    if match:
        return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"--since {value!r} is neither an ISO 8601 time nor a duration like 15m") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def subjects_overlap(a: str, b: str) -> bool:
    """Whether some subject matches both NATS subject patterns."""
    left, right = a.split("."), b.split(".")
    for x, y in zip(left, right):
        if x == ">" or y == ">":
            return True
        if x != y and "*" not in (x, y):
            return False
    return len(left) == len(right)


def republish_subject(prefix: str, subjects: Subjects, subject: str) -> str:
    return prefix + subject[len(subjects.prefix):]


async def check_republish_prefix(nc: Client, subjects: Subjects, prefix: str) -> None:
    """Refuse a prefix that is not a plain subject or whose subjects would land in RINGLOG_EVENTS."""
    if not prefix or not all(_TOKEN.match(token) for token in prefix.split(".")):
        raise ValueError(f"--republish {prefix!r} must be a subject prefix without wildcards, spaces or empty tokens")
    if prefix == subjects.prefix:
        raise ValueError(f"--republish {prefix!r} is the events prefix: the replay would land in {STREAM_NAME}")
    replayed = republish_subject(prefix, subjects, subjects.event_filter())
    config = (await nc.jetstream().stream_info(STREAM_NAME)).config
    for captured in config.subjects or [subjects.events_all]:
        if subjects_overlap(replayed, captured):
            raise ValueError(f"--republish {prefix!r}: {STREAM_NAME} captures {captured}, so the replay "
                             f"would land in the event log; choose another prefix")


def _pending(reply: str) -> int:
    tokens = reply.split(".")
    return int(tokens[8] if len(tokens) == 9 else tokens[10])


async def replay(nc: Client, subjects: Subjects, where: ReplayFilter, *, from_seq: int | None = None,
                 since: datetime | None = None, limit: int | None = None) -> AsyncIterator[Message]:
    """The matching events the log holds now, in log order, from `from_seq` or `since` (else the start)."""
    js = nc.jetstream()
    end = (await js.stream_info(STREAM_NAME)).state.last_seq
    name = f"ringlog-replay-{uuid.uuid4().hex[:12]}"
    remaining = await ephemeral(js, name, where.subject(subjects), start_seq=from_seq, start_time=since)
    if limit is not None:
        remaining = min(remaining, limit)
    feed = await PullFeed(nc, name, batch=min(max(remaining, 1), 2000)).start()
    try:
        while remaining > 0:
            messages = await feed.take(remaining, timeout=5.0)
            if not messages:
                raise RuntimeError(f"the log stopped delivering ({remaining} events still expected)")
            for message in messages:
                if message.seq > end:
                    return
                yield message
                remaining -= 1
                if _pending(message.reply) == 0:
                    remaining = 0
    finally:
        await feed.stop()
        try:
            await js.delete_consumer(STREAM_NAME, name)
        except Exception:  # noqa: BLE001 - it expires by itself (inactive_threshold)
            pass


async def _run(settings, args, out) -> int:
    subjects = Subjects(settings.prefix)
    where = ReplayFilter(callback=args.callback, user=args.user, call=args.call)
    since = parse_since(args.since) if args.since else None
    nc = await connect_feed_client(settings.nats_url, "ringlog-replay")
    try:
        if args.republish:
            await check_republish_prefix(nc, subjects, args.republish)
        count = 0
        async for message in replay(nc, subjects, where, from_seq=args.from_seq, since=since, limit=args.limit):
            if args.republish:
                headers = {"Ringlog-Stream-Seq": str(message.seq), "Ringlog-Original-Subject": message.subject}
                await nc.publish(republish_subject(args.republish, subjects, message.subject), message.data,
                                 headers=headers)
            else:
                time = datetime.fromtimestamp(message.ts / 1e9, timezone.utc).isoformat(timespec="microseconds")
                out.write(b'{"seq":%d,"subject":"%s","time":"%s","event":%s}\n'
                          % (message.seq, message.subject.encode(), time.encode(), message.data))
            count += 1
        await nc.flush()
        if args.republish:
            print(f"re-published {count} events under {args.republish}", file=sys.stderr)
        return 0
    finally:
        await nc.close()


def main(settings, args, out=None) -> int:
    """`ringlog replay`: JSON lines on stdout (one event per line) or re-published events."""
    from schemas.ids import InvalidId
    from services.runtime import loop

    try:
        return loop.run(_run(settings, args, out or sys.stdout.buffer))
    except BrokenPipeError:  # the reader went away (`| head`)
        sys.stdout = open(os.devnull, "w")
        return 0
    except (ValueError, InvalidId, RuntimeError) as error:
        print(f"ringlog replay: {error}", file=sys.stderr)
        return 2
