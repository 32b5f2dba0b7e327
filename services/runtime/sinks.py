"""A nats-py client with a short path for the hot subscriptions of a process.

nats-py hands every message to a subscription as a `Msg` object (headers parsed, a queue,
a task hop) before a callback sees it: about 13 µs a message here, as much as the work
the callback does. A *sink* registered for a subscription's sid gets the raw frame
(subject, reply, payload, raw header bytes) synchronously on the read loop instead, and
says whether it took it; what it declines takes nats-py's normal path. Relay acks and the
projector's deliveries arrive this way.

The hook is nats-py's `_process_msg` (nats-py is pinned below 3); `HOOK_FITS` checks its
signature, and with a plain client (no `sinks`) every user of this works the same, only
slower.
"""

from __future__ import annotations

import inspect
from typing import Callable

from nats.aio.client import Client

# (subject, reply, data, raw headers or None) -> True when the sink took the message
Sink = Callable[[bytes, bytes, bytes, "bytes | None"], bool]


class SinkClient(Client):
    """nats-py's client, with `sinks` taking the messages of registered subscriptions."""

    def __init__(self) -> None:
        super().__init__()
        self.sinks: dict[int, Sink] = {}

    async def _process_msg(self, sid, subject, reply, data, headers):  # noqa: D401 - nats-py's hook
        sink = self.sinks.get(sid)
        if sink is None or not sink(subject, reply, data, headers):
            return await super()._process_msg(sid, subject, reply, data, headers)
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)


HOOK_FITS = list(inspect.signature(Client._process_msg).parameters) == [
    "self", "sid", "subject", "reply", "data", "headers"]


def new_client() -> Client:
    """A SinkClient when this nats-py has the hook, else nats-py's own client."""
    return SinkClient() if HOOK_FITS else Client()


def register(nc: Client, subscription, sink: Sink) -> bool:
    """Route `subscription`'s messages to `sink` when `nc` can; False when it cannot."""
    sinks = getattr(nc, "sinks", None)
    if sinks is None:
        return False
    sinks[subscription._id] = sink
    return True


def unregister(nc: Client, subscription) -> None:
    getattr(nc, "sinks", {}).pop(subscription._id, None)
