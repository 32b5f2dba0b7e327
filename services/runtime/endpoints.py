"""Command endpoints as a `nats.micro` service: auth, decode, dispatch, one error mapping."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import msgspec
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from schemas.commands import Command, decode_command
from schemas.subjects import Subjects
from services.runtime.auth import user_from_headers
from services.runtime.errors import ServiceError, to_service_error
from services.runtime.metrics import ServiceMetrics

Handler = Callable[[Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class CommandRoute:
    command_type: type[Command]
    handler: Handler


class CommandEndpoints:
    def __init__(self, service: str, subjects: Subjects, secret: str, metrics: ServiceMetrics):
        self.service = service
        self.subjects = subjects
        self.secret = secret
        self.metrics = metrics
        self._in_flight: set[asyncio.Task] = set()

    async def start(self, nc: Client, routes: dict[str, CommandRoute], version: str = "0.1.0") -> Service:
        micro = await add_service(nc, name=f"ringlog-{self.service}", version=version,
                                  description=f"ringlog {self.service} commands")
        for verb, route in routes.items():
            await micro.add_endpoint(
                name=verb,
                subject=self.subjects.command(route.command_type.service, verb),
                handler=self._wrap(verb, route),
            )
        return micro

    async def drain(self, timeout: float = 5.0) -> None:
        """Let the requests already taken finish (after the endpoints stopped taking new ones)."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)

    def _wrap(self, verb: str, route: CommandRoute):
        # nats.micro awaits one request at a time per endpoint: answer each in its own task so
        # that concurrent commands can share a commit group and a slow hook delays only its own.
        async def endpoint(request: Request) -> None:
            task = asyncio.create_task(answer(request))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

        counters: dict[str, Any] = {}  # outcome -> this verb's counter (labels() costs a lock and a lookup)
        latency = self.metrics.command_latency.labels(self.service, verb)

        async def answer(request: Request) -> None:
            started = time.perf_counter()
            try:
                reply = await self.execute(route, request.data, request.headers)
                outcome = "ok"
                await request.respond(msgspec.json.encode(reply), headers={"Content-Type": "application/json"})
            except BaseException as raw:  # noqa: BLE001 - every request gets an answer
                error = to_service_error(raw)
                outcome = str(error.status)
                if error.status >= 500:
                    self.metrics.unexpected_errors.labels(self.service).inc()
                await request.respond_error(str(error.status), error.message.replace("\n", " "), data=error.body())
                if isinstance(raw, (KeyboardInterrupt, SystemExit)):
                    raise
            finally:
                counted = counters.get(outcome)
                if counted is None:
                    counted = counters[outcome] = self.metrics.commands.labels(self.service, verb, outcome)
                counted.inc()
                latency.observe(time.perf_counter() - started)

        return endpoint

    async def execute(self, route: CommandRoute, data: bytes, headers: dict[str, str] | None) -> dict[str, Any]:
        user_id = user_from_headers(headers, self.secret)
        command = decode_command(route.command_type, data)
        if command.actor.id != user_id:
            raise ServiceError(
                403, "not_token_user",
                f"acting user {command.actor.id!r} is not the token's user {user_id!r} - at `$.{command.actor_field}.id`",
            )
        return await route.handler(command)
