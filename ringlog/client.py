"""Python client for ringlog: send commands with a token, get typed answers or typed errors."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from schemas.subjects import DEFAULT_PREFIX, Subjects


class CommandError(Exception):
    """A command refused by ringlog: `status` (400, 401, 403, 404, 409, 429, 500), `code`, `message`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ServiceUnavailable(Exception):
    pass


def new_command_id() -> str:
    return uuid.uuid4().hex


class Client:
    def __init__(self, nc: NatsClient, token: str | None = None, prefix: str = DEFAULT_PREFIX, timeout: float = 5.0):
        self.nc = nc
        self.token = token
        self.subjects = Subjects(prefix)
        self.timeout = timeout

    @classmethod
    async def connect(cls, url: str, token: str | None = None, prefix: str = DEFAULT_PREFIX) -> "Client":
        return cls(await nats.connect(url), token, prefix)

    async def close(self) -> None:
        await self.nc.drain()

    def with_token(self, token: str) -> "Client":
        return Client(self.nc, token, self.subjects.prefix, self.timeout)

    async def command(self, service: str, verb: str, payload: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        """Send one command; a `commandID` is added when missing. Raises CommandError."""
        payload = {"commandID": new_command_id(), **payload}
        return await self.request(self.subjects.command(service, verb), msgspec.json.encode(payload), token)

    async def request(self, subject: str, data: bytes, token: str | None = None) -> dict[str, Any]:
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            reply = await self.nc.request(subject, data, timeout=self.timeout, headers=headers)
        except NoRespondersError as error:
            raise ServiceUnavailable(f"no service answers on {subject}") from error
        except NatsTimeout as error:
            raise ServiceUnavailable(f"no answer on {subject} within {self.timeout}s") from error
        status = (reply.headers or {}).get("Nats-Service-Error-Code")
        body = msgspec.json.decode(reply.data) if reply.data else {}
        if status:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise CommandError(int(status), error.get("code", ""), error.get("message", reply.headers.get("Nats-Service-Error", "")))
        return body
