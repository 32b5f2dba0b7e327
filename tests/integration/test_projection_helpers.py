"""Helpers of the projection tests: run the projector in the test's loop, wait for it, read its file."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import msgspec

from projections.main import serve
from projections.store import FILE_NAME, connect, dump
from services.runtime.config import Settings
from tests.integration.harness import RunningService, answering


async def start_projector(settings: Settings) -> RunningService:
    """serve() in this loop; returns once `$SRV.PING.ringlog-projections` answers."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    return await answering(RunningService("projections", task, stop), settings.nats_url)


async def query(nc, name: str, payload: dict | None = None) -> tuple[str | None, dict]:
    """(error status or None, body) of one query."""
    reply = await nc.request(f"ringlog.query.{name}", msgspec.json.encode(payload or {}), timeout=5)
    return (reply.headers or {}).get("Nats-Service-Error-Code"), msgspec.json.decode(reply.data)


async def caught_up(nc, timeout: float = 15.0) -> dict:
    """The lag once the projector has applied everything the stream holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, lag = await query(nc, "lag")
        if lag["lagEvents"] == 0 or asyncio.get_running_loop().time() > deadline:
            return lag
        await asyncio.sleep(0.05)


def dump_file(path: Path) -> dict:
    db = connect(path, readonly=True)
    try:
        return dump(db)
    finally:
        db.close()


def live_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / FILE_NAME


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
