"""`ringlog.query.*` as the `nats.micro` service `ringlog-projections`, with the commands' error mapping.

Queries need no token: they only read, and what they return is what subscribers of the
log may read anyway. The one write, `<prefix>.cmd.projections.swap` (put a rebuilt file
in place), takes a token like every command.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Awaitable, Callable

import msgspec
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from projections import reads
from services.runtime.auth import user_from_headers
from services.runtime.errors import ServiceError, to_service_error

if TYPE_CHECKING:
    from projections.main import ProjectionsProcess

SERVICE_NAME = "ringlog-projections"
REBUILT_FILE = re.compile(r"^projections\.rebuilt-[0-9]+\.sqlite$")
Answer = Callable[[bytes, dict | None], Awaitable[bytes]]


class SwapRequest(msgspec.Struct, kw_only=True):
    file: str  # name of the rebuilt file in the projector's data folder


def query_answers(process: "ProjectionsProcess") -> dict[str, Answer]:
    def reader():
        return process.store.reader

    async def call(data, headers):
        return reads.call(reader(), reads.decode_query(data, reads.CallQuery))

    async def timeline(data, headers):
        return reads.timeline(reader(), reads.decode_query(data, reads.TimelineQuery), process.subjects)

    async def active_calls(data, headers):
        return reads.active_calls(reader(), reads.decode_query(data, reads.Page))

    async def history(data, headers):
        return reads.history(reader(), reads.decode_query(data, reads.UserPage))

    async def missed(data, headers):
        return reads.history(reader(), reads.decode_query(data, reads.UserPage), missed_only=True)

    async def room(data, headers):
        return reads.room(reader(), reads.decode_query(data, reads.CallQuery))

    async def devices(data, headers):
        return reads.devices(reader(), reads.decode_query(data, reads.UserQuery))

    async def lag(data, headers):
        reads.decode_query(data, reads.NoArguments)
        return msgspec.json.encode(await process.lag())

    return {"call": call, "timeline": timeline, "active_calls": active_calls, "history": history,
            "missed": missed, "room": room, "devices": devices, "lag": lag}


def swap_answer(process: "ProjectionsProcess") -> Answer:
    async def swap(data, headers):
        user_from_headers(headers, process.settings.secret())
        request = msgspec.json.decode(data or b"{}", type=SwapRequest)
        if not REBUILT_FILE.match(request.file):
            raise ServiceError(400, "invalid_field",
                               "file must be a projections.rebuilt-<pid>.sqlite name in the data folder - at `$.file`")
        fresh = process.settings.data_dir / request.file
        if not fresh.is_file():
            raise ServiceError(404, "no_rebuilt_file", f"{fresh} does not exist on this projector's host - at `$.file`")
        return msgspec.json.encode({"position": await process.swap(fresh)})

    return swap


async def start_endpoints(process: "ProjectionsProcess") -> Service:
    micro = await add_service(process.nc, name=SERVICE_NAME, version="0.1.0",
                              description="ringlog projections: queries over read models rebuilt from the log")
    for name, answer in query_answers(process).items():
        await micro.add_endpoint(name=name, subject=process.subjects.query(name),
                                 handler=_wrap(process, name, answer))
    await micro.add_endpoint(name="swap", subject=process.subjects.command("projections", "swap"),
                             handler=_wrap(process, "swap", swap_answer(process)))
    return micro


def _wrap(process: "ProjectionsProcess", name: str, answer: Answer):
    metrics = process.metrics

    async def endpoint(request: Request) -> None:
        started = time.perf_counter()
        outcome = "ok"
        try:
            body = await answer(request.data, request.headers)
            await request.respond(body, headers={"Content-Type": "application/json"})
        except BaseException as raw:  # noqa: BLE001 - every request gets an answer
            error = to_service_error(raw)
            outcome = str(error.status)
            await request.respond_error(str(error.status), error.message.replace("\n", " "), data=error.body())
            if isinstance(raw, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            metrics.queries.labels(name, outcome).inc()
            metrics.query_latency.labels(name).observe(time.perf_counter() - started)

    return endpoint
