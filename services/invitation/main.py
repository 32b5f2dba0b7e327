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
from services.runtime.views import room_membership_feed

SOURCE = Source.invitation


async def build(runtime: Runtime) -> ServiceParts:
    rooms, rooms_feed = room_membership_feed(runtime)
    service = InvitationService(runtime.uow, rooms)
    service.recover()
    metrics = InvitationMetrics(runtime.metrics.registry)
    metrics.ringing.set_function(lambda: len(service.invitations.pending))
    outcomes = InvitationOutcomes(metrics)
    outcomes.seed(service.invitations.pending.values())
    runtime.observers.add(outcomes.observe)
    return ServiceParts(routes=service.routes(), tasks=[rooms_feed.run, service.run_timeouts], ready=rooms_feed.ready)


def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    loop.run(run_service("invitation", SOURCE, settings, build, stop))
