"""The NATS side shared by every process: connection with reconnect, and the event stream."""

from __future__ import annotations

import logging

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from schemas.subjects import STREAM_NAME, Subjects
from services.runtime.sinks import new_client

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 120.0


async def connect(url: str, name: str, on_reconnect=None, client: Client | None = None) -> Client:
    """Connect with unlimited reconnects and logged connection changes (`client`: a subclass to use;
    by default one whose hot subscriptions can take the short path of `sinks`)."""
    client = client or new_client()

    async def reconnected() -> None:
        log.warning("%s reconnected to NATS", name)
        if on_reconnect:
            on_reconnect()

    async def disconnected() -> None:
        if not client.is_closed:  # closing on purpose is no news
            log.warning("%s disconnected from NATS", name)

    async def error(exc: Exception) -> None:
        log.warning("%s NATS error: %s", name, exc)

    await client.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        reconnected_cb=reconnected,
        disconnected_cb=disconnected,
        error_cb=error,
    )
    return client


def stream_config(subjects: Subjects, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=STREAM_NAME,
        subjects=[subjects.events_all],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        deny_delete=True,
        deny_purge=True,
        allow_rollup_hdrs=False,
    )


async def ensure_stream(js: JetStreamContext, subjects: Subjects, replicas: int = 1) -> None:
    """Create RINGLOG_EVENTS, or check that the existing one keeps the log's guarantees."""
    wanted = stream_config(subjects, replicas)
    try:
        info = await js.stream_info(STREAM_NAME)
    except NotFoundError:
        await js.add_stream(wanted)
        return
    config = info.config
    problems = []
    if subjects.events_all not in (config.subjects or []):
        problems.append(f"subjects {config.subjects} do not include {subjects.events_all}")
    if not config.deny_delete or not config.deny_purge:
        problems.append("deny_delete and deny_purge must be on")
    if config.allow_rollup_hdrs:
        problems.append("rollups must be off")
    if (config.duplicate_window or 0) < DUPLICATE_WINDOW_SECONDS:
        problems.append(f"duplicate window {config.duplicate_window}s is below {DUPLICATE_WINDOW_SECONDS}s")
    if problems:
        raise RuntimeError(f"stream {STREAM_NAME} is not an append-only event log: " + "; ".join(problems))
