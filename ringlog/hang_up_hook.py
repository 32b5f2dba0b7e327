"""The onHangUpConfirmation hook from Python: answer the room service's question before a hang-up.

    async def confirm(callID, user):          # user: ZegoUIKitUser-like (id, name)
        return not await recording_in_progress(callID)

    hook = await client.on_hang_up_confirmation("bob", confirm)
    ...
    await hook.stop()

Before it hangs a user up, the room service sends a NATS request to
`ringlog.hook.onHangUpConfirmation.<callID>.<userID>` (ids encoded as subject tokens)
with the body `{"callID": ..., "user": {"id": ..., "name": ...}}`. The responder replies
the JSON `true` (go on) or `false` (veto: the user stays in the call, and the log records
onHangUpConfirmation with `confirmed: false`). As in the kit, only a true answer hangs up:
a confirm function returning False or None vetoes. One that raises, or a request that
cannot be read, is answered `true`: the kit's default when nobody decides. No responder, or no answer
within the service's limit (RINGLOG_HOOK_TIMEOUT_SECONDS), also counts as `true`.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Awaitable, Callable, Union

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from ringlog.replies import HangUpHookRequest
from schemas.subjects import Subjects

log = logging.getLogger(__name__)

Confirm = Callable[[str, Any], Union[Awaitable[bool], bool]]
_decode = msgspec.json.Decoder(HangUpHookRequest).decode


def hook_filter(subjects: Subjects, user: str, call: str | None = None) -> str:
    """The hook subject for one user, for one call or (with `call=None`) any."""
    tokens = subjects.hang_up_hook(call if call is not None else "any", user).split(".")
    if call is None:
        tokens[-2] = "*"
    return ".".join(tokens)


class HangUpHookResponder:
    def __init__(self, nc: NatsClient, subjects: Subjects, user: str, confirm: Confirm, call: str | None = None):
        self.nc = nc
        self.subject = hook_filter(subjects, user, call)
        self.confirm = confirm
        self._subscription = None

    async def start(self) -> "HangUpHookResponder":
        self._subscription = await self.nc.subscribe(self.subject, cb=self._answer)
        await self.nc.flush()  # the interest is registered before start() returns
        return self

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def decide(self, data: bytes) -> bool:
        try:
            request = _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning("unreadable hang-up hook request on %s (%s); answering true", self.subject, error)
            return True
        try:
            answer = self.confirm(request.callID, request.user)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception:
            log.exception("hang-up confirmation for %s in %s failed; answering true", request.user.id, request.callID)
            return True
        return bool(answer)

    async def _answer(self, message: Msg) -> None:
        confirmed = await self.decide(message.data)
        if message.reply:
            await message.respond(b"true" if confirmed else b"false")
