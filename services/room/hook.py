"""The onHangUpConfirmation hook: ask whoever listens on the hook subject before a hang-up.

A NATS request goes to `ringlog.hook.onHangUpConfirmation.<callID>.<userID>` with the
JSON body `{"callID": ..., "user": {"id": ..., "name": ...}}`. The answer vetoes the
hang-up only when it says so explicitly: a body of `false` or `{"confirmed": false}`.
No responder, no answer within the limit, or an answer that cannot be read all count
as confirmed, which is the kit's own default (ARCHITECTURE.md 3.1).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from schemas.subjects import Subjects
from schemas.types import User
from services.runtime.requests import Requests

log = logging.getLogger(__name__)


def hook_body(call_id: str, user: User) -> bytes:
    return msgspec.json.encode({"callID": call_id, "user": user})


def read_answer(data: bytes) -> bool:
    """True unless the reply is `false` or an object whose `confirmed` is `false`."""
    if not data.strip():
        return True
    try:
        answer: Any = msgspec.json.decode(data)
    except msgspec.DecodeError:
        log.warning("hang-up hook answered with invalid JSON %r; counting it as confirmed", data[:100])
        return True
    if answer is False:
        return False
    if isinstance(answer, dict) and answer.get("confirmed") is False:
        return False
    return True


class HangUpHook:
    """Asks the hook subject of one (call, user); never raises for a missing or slow hook."""

    def __init__(self, nc: Client, subjects: Subjects, timeout_seconds: float):
        self.nc = nc
        self.subjects = subjects
        self.timeout_seconds = timeout_seconds
        self._requests = Requests(nc)  # one inbox for every hang-up's question (most get "no responders")

    async def confirm(self, call_id: str, user: User) -> bool:
        subject = self.subjects.hang_up_hook(call_id, user.id)
        try:
            reply = await self._requests.request(subject, hook_body(call_id, user), self.timeout_seconds)
        except NoRespondersError:
            return True
        except NatsTimeout:
            log.info("hang-up hook on %s did not answer within %.1fs; confirmed", subject, self.timeout_seconds)
            return True
        return read_answer(reply.data)
