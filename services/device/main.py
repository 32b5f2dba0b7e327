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
from services.runtime.views import room_membership_feed

SOURCE = Source.device_monitor


async def build(runtime: Runtime) -> ServiceParts:
    rooms, rooms_feed = room_membership_feed(runtime)
    service = DeviceService(runtime.uow, rooms)
    runtime.observers.add(DeviceExceptions(DeviceMetrics(runtime.metrics.registry)).observe)
    return ServiceParts(routes=service.routes(), tasks=[rooms_feed.run], ready=rooms_feed.ready)


def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    loop.run(run_service("device", SOURCE, settings, build, stop))
