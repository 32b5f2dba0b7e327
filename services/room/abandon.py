"""Abandoned calls: an accepted invitation whose callees never arrive in the room.

The room service learns about acceptances only from the log: it follows
`ringlog.evt.invitation.onOutgoingCallAccepted.>` from `HORIZON` ago (so a restart replays
the recent acceptances) and keeps one `ExpectMembers` per call: the caller (the event's
recipient) first, then every callee who accepted. Each acceptance renews the wait, so the
deadline is the last acceptance's `occurredAt` plus `abandon_after_seconds`, compared
with the service clock. When it passes, the service decides the domain's `Abandon`
under its usual lock, unless the room's state (in memory) already shows an expected
callee arrived, which is the usual case and costs no command. The command id is derived
from the call id, so the decision is recorded once, and a replay after a restart finds
the record and does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from schemas.events import Event, OutgoingCallAccepted
from schemas.types import User
from services.room.domain import ExpectMembers
from services.room.service import RoomService
from services.runtime.deadlines import Deadlines
from services.runtime.domain import parse_timestamp
from services.runtime.handling import internal_command_id

log = logging.getLogger(__name__)
# How far back a (re)start reads acceptances: a call accepted longer ago, whose callees
# never came while the room service was down all that time, is not abandoned any more.
HORIZON = timedelta(hours=1)
RETRY_AFTER = timedelta(seconds=0.5)  # an Abandon whose decision failed is tried again


def expect(previous: ExpectMembers | None, accepted: OutgoingCallAccepted) -> ExpectMembers:
    """The expectation of a call after one more acceptance (caller first, callees in order)."""
    expected = list(previous.expected) if previous else [User(id=accepted.recipient)]
    if all(user.id != accepted.callee.id for user in expected):
        expected.append(accepted.callee)
    accepted_at = max(previous.acceptedAt, accepted.occurredAt) if previous else accepted.occurredAt
    return ExpectMembers(
        commandID=internal_command_id("expect", accepted.callID),
        callID=accepted.callID,
        expected=expected,
        acceptedAt=accepted_at,
    )


class AbandonWatch:
    def __init__(self, service: RoomService, abandon_after_seconds: float, clock: Callable[[], datetime]):
        self.service = service
        self.wait = timedelta(seconds=abandon_after_seconds)
        self.clock = clock
        self.expectations: dict[str, ExpectMembers] = {}
        self.deadlines: Deadlines[str] = Deadlines(clock)

    def due(self, expectation: ExpectMembers) -> datetime:
        return parse_timestamp(expectation.acceptedAt) + self.wait

    def on_event(self, event: Event) -> None:
        """Feed from the log (follow_log): remember who should arrive, and by when."""
        if not isinstance(event, OutgoingCallAccepted):
            return
        expectation = expect(self.expectations.get(event.callID), event)
        self.expectations[event.callID] = expectation
        self.deadlines.add(self.due(expectation), event.callID)

    async def fire_due(self) -> None:
        """Decide Abandon for every expectation whose deadline passed."""
        now = self.clock()
        while (call_id := self.deadlines.pop_due(now)) is not None:
            expectation = self.expectations.get(call_id)
            if expectation is None or self.due(expectation) > now:
                continue  # already handled, or renewed by a later acceptance (its own entry waits)
            if self.service.expected_callee_arrived(expectation):
                del self.expectations[call_id]  # the usual case: nothing to decide, nothing to lock
                continue
            try:
                await self.service.abandon(expectation)
            except Exception:
                log.exception("abandon of %s failed; retrying", call_id)
                self.deadlines.add(now + RETRY_AFTER, call_id)
                return
            del self.expectations[call_id]

    async def run(self) -> None:
        while True:
            await self.fire_due()
            await self.deadlines.wait()
