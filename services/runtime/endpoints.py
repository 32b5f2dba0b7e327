"""Command endpoints as a `nats.micro` service: auth, decode, dispatch, one error mapping.

micro keeps discovery ($SRV.PING/INFO/STATS) and the subscriptions; with a sink client
the requests' frames skip micro's per-message objects (see `sinks`), and the endpoint
statistics are kept here the same way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import msgspec
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER, Request
from nats.micro.service import Service

from schemas.commands import Command, decode_command
from schemas.subjects import Subjects
from services.runtime.auth import user_from_headers
from services.runtime.errors import ServiceError, to_service_error
from services.runtime import sinks
from services.runtime.metrics import ServiceMetrics
from services.runtime.wire import header_block, hpub, parse_headers

_JSON_HEADERS = header_block({"Content-Type": "application/json"})

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
        self._nc = nc
        micro = await add_service(nc, name=f"ringlog-{self.service}", version=version,
                                  description=f"ringlog {self.service} commands")
        for verb, route in routes.items():
            answer = self._answerer(verb, route)
            await micro.add_endpoint(
                name=verb,
                subject=self.subjects.command(route.command_type.service, verb),
                handler=self._micro_handler(answer),
            )
            endpoint = micro._endpoints[-1]
            sinks.register(nc, endpoint._subscription, self._sink(answer, endpoint))
        return micro

    async def drain(self, timeout: float = 5.0) -> None:
        """Let the requests already taken finish (after the endpoints stopped taking new ones)."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)

    def _spawn(self, answering: Awaitable[None]) -> None:
        # nats.micro awaits one request at a time per endpoint: answer each in its own task so
        # that concurrent commands can share a commit group and a slow hook delays only its own.
        task = asyncio.create_task(answering)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _micro_handler(self, answer):
        async def handler(request: Request) -> None:  # a plain nats-py client: micro's own path
            self._spawn(answer(request.data, request.headers, request._msg.reply))
        return handler

    def _sink(self, answer, endpoint):
        """The short path: the request's frame straight from the read loop (micro's stats kept)."""
        def take(subject: bytes, reply: bytes, data: bytes, raw_headers: bytes | None) -> bool:
            if not reply or (raw_headers and not raw_headers.startswith(b"NATS/1.0\r\n")):
                return False  # micro's path answers what is not a plain request
            endpoint._num_requests += 1
            self._spawn(answer(data, parse_headers(raw_headers), reply.decode(), endpoint))
            return True
        return take

    def _answerer(self, verb: str, route: CommandRoute):
        counters: dict[str, Any] = {}  # outcome -> this verb's counter (labels() costs a lock and a lookup)
        latency = self.metrics.command_latency.labels(self.service, verb)

        async def answer(data: bytes, headers: dict[str, str] | None, reply: str, endpoint=None) -> None:
            started = time.perf_counter()
            try:
                result = await self.execute(route, data, headers)
                outcome = "ok"
                await self._respond(reply, msgspec.json.encode(result))
            except BaseException as raw:  # noqa: BLE001 - every request gets an answer
                error = to_service_error(raw)
                outcome = str(error.status)
                if error.status >= 500:
                    self.metrics.unexpected_errors.labels(self.service).inc()
                if endpoint is not None:
                    endpoint._num_errors += 1
                    endpoint._last_error = f"{error.status}: {error.message}"
                await self._nc.publish(reply, error.body(), headers={
                    ERROR_HEADER: error.message.replace("\n", " "), ERROR_CODE_HEADER: str(error.status)})
                if isinstance(raw, (KeyboardInterrupt, SystemExit)):
                    raise
            finally:
                counted = counters.get(outcome)
                if counted is None:
                    counted = counters[outcome] = self.metrics.commands.labels(self.service, verb, outcome)
                counted.inc()
                elapsed = time.perf_counter() - started
                latency.observe(elapsed)
                if endpoint is not None:
                    endpoint._processing_time += int(elapsed * 1e9)
                    endpoint._average_processing_time = endpoint._processing_time // endpoint._num_requests

        return answer

    async def _respond(self, reply: str, payload: bytes) -> None:
        publish_frames = getattr(self._nc, "publish_frames", None)
        if publish_frames is None:
            await self._nc.publish(reply, payload, headers={"Content-Type": "application/json"})
        else:
            await publish_frames(hpub(reply.encode(), b"", _JSON_HEADERS, payload), 1, len(payload))

    async def execute(self, route: CommandRoute, data: bytes, headers: dict[str, str] | None) -> dict[str, Any]:
        user_id = user_from_headers(headers, self.secret)
        command = decode_command(route.command_type, data)
        if command.actor.id != user_id:
            raise ServiceError(
                403, "not_token_user",
                f"acting user {command.actor.id!r} is not the token's user {user_id!r} - at `$.{command.actor_field}.id`",
            )
        return await route.handler(command)
