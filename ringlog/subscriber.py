"""Subscribe per callback type, filtered to one user, one call, or all (ARCHITECTURE.md 2).

    subscriber = client.callbacks(user="bob", token_provider=tokens)          # live
    subscriber.invitation_events.onIncomingCallReceived = on_incoming           # as on the reference page
    subscriber.events.user.onEnter = lambda user: print(user.id, "entered")
    subscriber.subscribe("onCallEnd", lambda event: print(event.reason))        # the typed event
    await subscriber.start()
    ...
    await subscriber.stop()

Two delivery modes (ringlog.delivery): live (`durable=None`: a core NATS subscription, only
what is published from now on) and durable (`durable="billing"`: a named JetStream consumer
that resumes where it stopped, acks after the handlers return, redelivers a failed event
up to `max_deliver` times and then dead-letters it to `ringlog.dlq.<durable>.<...>`).
Both drop an event whose eventID was already handled (an LRU of `dedupe_size` ids) and
hand events over in log order, one at a time.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import msgspec

from ringlog.callbacks import Callback, CallEvents, InvitationEvents, registered
from ringlog.default_actions import default_action_for
from ringlog.delivery import DurableDelivery, DurableOptions, LiveDelivery, PoisonEvent
from ringlog.identity import TokenProvider
from schemas.events import CALLBACK_NAMES, Event, categories_of, decode_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    category: str
    name: str
    handler: Callable[..., Any]
    callback: Callback | None = None  # None: the handler takes the typed event

    def filter_key(self) -> tuple[str, str]:
        return self.category, self.name


class SeenEvents:
    """The last `size` eventIDs handled, to drop redeliveries and re-publications."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        return False

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


class CallbackSubscriber:
    def __init__(
        self, client, *, user: str | None = None, call: str | None = None,
        events: CallEvents | None = None, invitation_events: InvitationEvents | None = None,
        token: str | None = None, token_provider: TokenProvider | None = None,
        durable: str | None = None, deliver: str = "all", max_deliver: int = 5, retry_delay: float = 1.0,
        ack_wait: float = 30.0, max_in_flight: int = 1, dedupe_size: int = 10_000, settle_seconds: float = 0.5,
    ):
        self.client = client
        self.user = user
        self.call = call
        self.events = events or CallEvents()
        self.invitation_events = invitation_events or InvitationEvents()
        self.tokens = token or token_provider
        self.settle_seconds = settle_seconds
        self.seen = SeenEvents(dedupe_size)
        self.durable = None if durable is None else DurableOptions(
            name=durable, deliver=deliver, max_deliver=max_deliver, retry_delay=retry_delay,
            ack_wait=ack_wait, max_in_flight=max_in_flight,
        )
        self._typed: list[Route] = []
        self._routes: dict[tuple[str, str], list[Route]] = {}
        self._delivery: LiveDelivery | DurableDelivery | None = None
        self._running = False
        self.handled = 0
        self.duplicates = 0

    # --- registration -----------------------------------------------------------------
    def subscribe(self, callback_name: str, handler: Callable[[Event], Any]) -> "CallbackSubscriber":
        """`handler(event)` gets every event of one callback type (onError: both categories)."""
        if callback_name not in CALLBACK_NAMES:
            raise ValueError(f"unknown callback {callback_name!r}; one of: {', '.join(CALLBACK_NAMES)}")
        if not callable(handler):
            raise TypeError("handler must be callable")
        for category in categories_of(callback_name):
            self._typed.append(Route(category, callback_name, handler))
        return self

    def routes(self) -> list[Route]:
        kit = [Route(cb.category, cb.name, handler, cb) for cb, handler in registered(self.events, self.invitation_events)]
        return kit + self._typed

    def filters(self) -> list[str]:
        """The event subjects this subscriber needs, one per (category, callback)."""
        keys = dict.fromkeys(route.filter_key() for route in self.routes())
        return [self.client.subjects.event_filter(category, name, self.call, self.user) for category, name in keys]

    # --- running ----------------------------------------------------------------------
    async def start(self) -> "CallbackSubscriber":
        if self._running:
            raise RuntimeError("subscriber already started")
        routes = self.routes()
        if not routes:
            raise ValueError("no handler registered: set one on .events / .invitation_events or call subscribe()")
        self._routes = {}
        for route in routes:
            self._routes.setdefault(route.filter_key(), []).append(route)
        filters = self.filters()
        if self.durable is None:
            self._delivery = LiveDelivery(self.client.nc, self.client.subjects, filters, self.handle)
        else:
            self._delivery = DurableDelivery(self.client.nc, self.client.subjects, filters, self.handle, self.durable)
        await self._delivery.start()
        self._running = True
        return self

    async def stop(self) -> None:
        """Stop delivery; the event being handled is finished (and acked) first."""
        if self._running and self._delivery is not None:
            self._running = False
            await self._delivery.stop()

    async def __aenter__(self) -> "CallbackSubscriber":
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    @property
    def delivery(self) -> LiveDelivery | DurableDelivery | None:
        """The delivery of the last start (kept after stop: failures, dead_letters)."""
        return self._delivery

    # --- handing events over -----------------------------------------------------------
    async def handle(self, subject: str, data: bytes) -> bool:
        """Run the handlers of one message; False when it was not for us or a duplicate.
        Raises what a handler (or its default action) raised, or PoisonEvent."""
        category, name = _category_and_name(subject, self.client.subjects.prefix)
        routes = self._routes.get((category, name))
        if not routes:
            return False
        try:
            event = decode_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise PoisonEvent(f"{subject}: {error}") from error
        if event.eventID in self.seen:
            self.duplicates += 1
            return False
        for route in routes:
            await self._call(route, event)
        self.seen.add(event.eventID)
        self.handled += 1
        return True

    async def _call(self, route: Route, event: Event) -> None:
        if route.callback is None:
            args: tuple[Any, ...] = (event,)
            action = None
        else:
            action = default_action_for(self.client, event, self.tokens, self.settle_seconds) \
                if route.callback.has_default_action else None
            args = route.callback.arguments(event, action)
        result = route.handler(*args)
        if inspect.isawaitable(result):
            await result
        if action is not None:
            await action.settle()


def _category_and_name(subject: str, prefix: str) -> tuple[str, str]:
    tokens = subject[len(prefix) + 1:].split(".")
    return (tokens[1], tokens[2]) if len(tokens) >= 3 else ("", "")
