"""Test harness: a real nats-server per test session, services run in-process per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats
from nats.js.api import DeliverPolicy

from ringlog.client import Client
from schemas.events import Event, decode_event
from schemas.subjects import STREAM_NAME, Subjects
from services.runtime.auth import issue_token
from services.runtime.config import Settings

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def env_without_ringlog_settings() -> dict[str, str]:
    """This process's environment minus RINGLOG_* (a child `ringlog` then takes its defaults)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RINGLOG_")}


def new_settings(nats_url: str, data_dir: Path) -> Settings:
    return Settings(
        nats_url=nats_url,
        data_dir=data_dir,
        prefix="ringlog",
        token_secret=SECRET,
        metrics_port=0,
        abandon_after_seconds=3.0,
        hook_timeout_seconds=0.5,
    )


def token(user_id: str) -> str:
    return issue_token(SECRET, user_id)


@dataclass
class RunningService:
    name: str
    task: asyncio.Task
    stop: asyncio.Event

    async def shutdown(self) -> None:
        self.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 15)


async def start_service(name: str, settings: Settings) -> RunningService:
    """Run a service's real process body in this event loop; returns once it answers $SRV.PING."""
    from services.runtime.host import run_service
    from ringlog.up import MODULES
    import importlib

    module = importlib.import_module(MODULES[name])
    stop = asyncio.Event()
    task = asyncio.create_task(run_service(name, module.SOURCE, settings, module.build, stop))
    return await answering(RunningService(name, task, stop), settings.nats_url)


async def answering(service: RunningService, url: str, attempts: int = 200) -> RunningService:
    """The service once it answers `$SRV.PING.ringlog-<name>`; its start-up failure is raised."""
    nc = await nats.connect(url)
    try:
        for _ in range(attempts):
            if service.task.done():
                service.task.result()
            try:
                await nc.request(f"$SRV.PING.ringlog-{service.name}", b"", timeout=0.2)
                return service
            except Exception:
                await asyncio.sleep(0.05)
    finally:
        await nc.close()
    raise RuntimeError(f"{service.name} did not answer $SRV.PING")


async def nothing_delivered_nor_pending(subscription) -> bool:
    """True when a fresh consumer has no message for us (messages may already be in flight)."""
    info = await subscription.consumer_info()
    return info.num_pending == 0 and info.delivered.consumer_seq == 0


@dataclass
class LogReader:
    """Reads the event log back from the stream."""

    url: str
    subjects: Subjects
    nc: nats.NATS | None = None

    async def events(self, filter_subject: str | None = None) -> list[tuple[str, Event]]:
        nc = self.nc or await nats.connect(self.url)
        try:
            js = nc.jetstream()
            subject = filter_subject or self.subjects.events_all
            info = await js.stream_info(STREAM_NAME)
            if info.state.messages == 0:
                return []
            subscription = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
            found: list[tuple[str, Event]] = []
            if not await nothing_delivered_nor_pending(subscription):
                while True:
                    message = await subscription.next_msg(timeout=5)
                    found.append((message.subject, decode_event(message.data)))
                    if message.metadata.num_pending == 0:
                        break
            await subscription.unsubscribe()
            return found
        finally:
            if self.nc is None:
                await nc.close()

    async def wait_for(self, count: int, filter_subject: str | None = None, timeout: float = 5.0):
        """The events once at least `count` are on the log (the relay publishes asynchronously)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = await self.events(filter_subject)
            if len(found) >= count or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.05)


def summary(found: list[tuple[str, Event]]) -> list[tuple[str, str]]:
    """(callback, recipient) pairs: the shape most flow assertions need."""
    return [(event.type, event.recipient) for _, event in found]


def as_dict(event: Event) -> dict:
    return msgspec.to_builtins(event)


@dataclass
class Users:
    client: Client

    def as_(self, user_id: str) -> Client:
        return self.client.with_token(token(user_id))
