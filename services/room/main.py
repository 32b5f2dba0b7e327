"""The room service process: join, hang_up, kick, report_state; abandoned calls from the log."""

from __future__ import annotations

import asyncio

from schemas.enums import Source
from services.room.abandon import HORIZON, AbandonWatch
from services.room.hook import HangUpHook
from services.room.service import RoomService
from services.runtime.call_metrics import RoomMetrics
from services.runtime.config import Settings
from services.runtime.event_metrics import RoomSessions
from services.runtime import loop
from services.runtime.host import Runtime, ServiceParts, run_service
from services.runtime.views import MEMBERSHIP_HORIZON, LogFeed

SOURCE = Source.room


async def build(runtime: Runtime) -> ServiceParts:
    settings = runtime.settings
    hook = HangUpHook(runtime.nc, runtime.subjects, settings.hook_timeout_seconds)
    service = RoomService(runtime.uow, hook.confirm)
    watch = AbandonWatch(service, settings.abandon_after_seconds, runtime.uow.clock)
    sessions = RoomSessions(RoomMetrics(runtime.metrics.registry))
    # rooms open before a restart: those with a state change in the membership horizon
    for call_id in runtime.store.recent_streams("onStateChanged", MEMBERSHIP_HORIZON.total_seconds()):
        sessions.seed(runtime.store.load(call_id))
    runtime.observers.add(sessions.observe)
    acceptances = runtime.subjects.event_filter(category="invitation", callback="onOutgoingCallAccepted")
    # ready once every recent acceptance on the log has its deadline
    acceptances_feed = LogFeed(runtime.js, acceptances, watch.on_event, since=runtime.uow.clock() - HORIZON)
    return ServiceParts(routes=service.routes(), tasks=[acceptances_feed.run, watch.run], ready=acceptances_feed.ready)


def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    loop.run(run_service("room", SOURCE, settings, build, stop))
