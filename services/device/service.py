"""Device-monitor service layer: `device.report` -> at most one small commit.

Reports are frequent, so the handler is built around the cheap cases:

1. a report with none of the six device fields is bad input (400 `invalid_field`);
2. the (call, user) device state comes from memory (`DeviceStates`; the store is read
   only on a miss);
3. a retried commandID that is still remembered gets its first answer back, and a
   repeat (`domain.is_repeat`) is answered `{"callID", "eventIDs": []}`: neither touches
   the store, both take a token from the (call, user) repeat bucket and are refused with
   429 `rate_limited` once it is empty (`rate_limit.RepeatLimiter`);
4. anything else: the store's command record answers an older retry, otherwise decide
   and commit the events with the command record in one `UnitOfWork.commit`.

Remote exception events go to every other member of the call's room, as the local
`RoomMembership` view (fed from the room service's onStateChanged events) knows it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from msgspec import UNSET

from schemas.commands import DeviceReport
from services.device import domain
from services.device.rate_limit import RepeatLimiter
from services.device.states import DeviceStates
from services.runtime.endpoints import CommandRoute
from services.runtime.errors import RateLimited, ServiceError
from services.runtime.handling import UnitOfWork
from services.runtime.views import RoomMembership

REPORT_FIELDS = ("camera", "frontFacingCamera", "microphone", "audioRoute", "cameraException", "microphoneException")


def check_report_has_a_field(command: DeviceReport) -> None:
    """A report must carry at least one device field (the schema makes each optional)."""
    if all(getattr(command, name) is UNSET for name in REPORT_FIELDS):
        raise ServiceError(
            400, "invalid_field",
            f"a device report needs at least one of {', '.join(REPORT_FIELDS)} - at `$`",
        )


class DeviceService:
    def __init__(
        self,
        uow: UnitOfWork,
        rooms: RoomMembership | None = None,
        *,
        limiter: RepeatLimiter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.uow = uow
        self.rooms = rooms or RoomMembership()
        self.devices = DeviceStates(uow.store)
        self.limiter = limiter or RepeatLimiter(monotonic)
        uow.on_abort.append(self.devices.forget_keys)  # a failed commit group: reload those devices

    def routes(self) -> dict[str, CommandRoute]:
        return {"report": CommandRoute(DeviceReport, self.report)}

    async def report(self, command: DeviceReport) -> dict[str, Any]:
        check_report_has_a_field(command)
        call_id, user_id = command.callID, command.user.id
        async with self.uow.lock:
            tracked = self.devices.get(call_id, user_id)
            remembered = tracked.answers.get(command.commandID)
            if remembered is not None:
                self._spend_repeat_token(command)
                return remembered
            if domain.is_repeat(tracked.state, command):
                self._spend_repeat_token(command)
                return {"callID": call_id, "eventIDs": []}
            if (answer := await self.uow.previous_answer(command)) is not None:
                return answer
            events = domain.decide(tracked.state, command, self.uow.context(),
                                   room_members=self.rooms.members(call_id))
            key = domain.aggregate_key(call_id, user_id)
            committed = self.uow.stage(command, [(key, events)], {"callID": call_id})
            self.devices.record(tracked, events)
        reply = await committed
        self.devices.remember(tracked, command.commandID, reply)
        return reply

    def _spend_repeat_token(self, command: DeviceReport) -> None:
        verdict = self.limiter.take(domain.aggregate_key(command.callID, command.user.id))
        if not verdict.allowed:
            raise RateLimited(
                f"too many device reports that change nothing for user {command.user.id!r} in call "
                f"{command.callID!r}: at most {self.limiter.rate:g} per second (bursts of "
                f"{self.limiter.burst:g}); retry in {verdict.retry_after:.2f} s or report only changes"
            )
