"""The invitation service process."""

from __future__ import annotations

import asyncio

from schemas.enums import Source
from services.invitation.service import InvitationService
from services.runtime.call_metrics import InvitationMetrics
from services.runtime.config import Settings
from services.runtime.event_metrics import InvitationOutcomes
from services.runtime import loop
from services.runtime.host import Runtime, ServiceParts, run_service
from services.runtime.views import MEMBERSHIP_HORIZON, RoomMembership, follow_log

SOURCE = Source.invitation


async def build(runtime: Runtime) -> ServiceParts:
    rooms = RoomMembership()
    service = InvitationService(runtime.uow, rooms)
    service.recover()
    metrics = InvitationMetrics(runtime.metrics.registry)
    metrics.ringing.set_function(lambda: len(service.invitations.pending))
    outcomes = InvitationOutcomes(metrics)
    outcomes.seed(service.invitations.pending.values())
    runtime.observers.add(outcomes.observe)
    caught_up = asyncio.Event()
    room_events = runtime.subjects.event_filter(category="room", callback="onStateChanged")

    async def follow_rooms() -> None:
        since = runtime.uow.clock() - MEMBERSHIP_HORIZON
        await follow_log(runtime.js, room_events, rooms.apply, caught_up=caught_up, since=since)

    async def ready() -> None:
        await asyncio.wait_for(caught_up.wait(), 60)

    return ServiceParts(routes=service.routes(), tasks=[follow_rooms, service.run_timeouts], ready=ready)


def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    loop.run(run_service("invitation", SOURCE, settings, build, stop))
