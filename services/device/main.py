"""The device-monitor service process ("device": `ringlog.cmd.device.report`, micro `ringlog-device`)."""

from __future__ import annotations

import asyncio

from schemas.enums import Source
from services.device.service import DeviceService
from services.runtime.call_metrics import DeviceMetrics
from services.runtime.config import Settings
from services.runtime.event_metrics import DeviceExceptions
from services.runtime import loop
from services.runtime.host import Runtime, ServiceParts, run_service
from services.runtime.views import MEMBERSHIP_HORIZON, RoomMembership, follow_log

SOURCE = Source.device_monitor


async def build(runtime: Runtime) -> ServiceParts:
    rooms = RoomMembership()
    service = DeviceService(runtime.uow, rooms)
    runtime.observers.add(DeviceExceptions(DeviceMetrics(runtime.metrics.registry)).observe)
    caught_up = asyncio.Event()
    room_events = runtime.subjects.event_filter(category="room", callback="onStateChanged")

    async def follow_rooms() -> None:
        since = runtime.uow.clock() - MEMBERSHIP_HORIZON
        await follow_log(runtime.js, room_events, rooms.apply, caught_up=caught_up, since=since)

    async def ready() -> None:
        await asyncio.wait_for(caught_up.wait(), 60)

    return ServiceParts(routes=service.routes(), tasks=[follow_rooms], ready=ready)


def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    loop.run(run_service("device", SOURCE, settings, build, stop))
