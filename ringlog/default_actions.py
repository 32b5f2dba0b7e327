"""`defaultAction` of onCallEnd and onIncomingMissedCallClicked, done on the server side.

The kit's default actions leave the call page (onCallEnd) and dial the caller back
(onIncomingMissedCallClicked). Here they are commands, sent as the event's recipient
(so the subscriber needs a token, or a token provider, for that user):

- onCallEnd: leave the room. If the log still shows the recipient in the call's room, the
  SDK sends `room.hang_up` for them; a 403 `not_a_member` counts as already done. The room
  service records a user's exit together with onCallEnd (Logout before it for a hang-up,
  right after it for remoteHangUp, kickOut and abandoned), so usually there is nothing
  left to do: the SDK waits up to `settle_seconds` for that Logout to reach the log before
  it concludes the user is still in. A later login (a rejoin) is left alone.
- onIncomingMissedCallClicked: dial back, i.e. `invitation.send` from the recipient to the
  caller with the same callType and customData. When the click itself asked the service
  to dial back (`dialBack: true`, the command's default), the service has done it already
  (or logged onIncomingMissedCallDialBackFailed) and the default action does nothing.

Both commands carry a commandID derived from the eventID, so a redelivered event whose
default action runs again gets the first answer and writes nothing new.

`defaultAction()` (or the kit's `defaultAction.call()`) starts the action and returns an
awaitable: a sync handler just calls it, an async one may `await defaultAction()` for the
reply. Either way the subscriber awaits it before the event counts as handled.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from nats.js.errors import NotFoundError

from ringlog.errors import Forbidden
from ringlog.identity import TokenSource, require_token
from schemas.enums import ZegoRoomStateChangedReason as RoomReason
from schemas.events import CallEnd, IncomingMissedCallClicked, StateChanged, decode_event
from schemas.subjects import STREAM_NAME
from schemas.types import User

LEAVING_REASONS = (RoomReason.Logout, RoomReason.ReconnectFailed)


class DefaultAction:
    """Callable once-only action; calling it again returns the same task."""

    def __init__(self, run: Callable[[], Awaitable[Any]]):
        self._run = run
        self.task: asyncio.Future | None = None

    def __call__(self) -> asyncio.Future:
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())
        return self.task

    def call(self) -> asyncio.Future:
        """The kit's spelling: `defaultAction.call()`."""
        return self()

    async def settle(self) -> Any:
        """Wait for the action if the handler started it; re-raises its failure."""
        return await self.task if self.task is not None else None


async def last_room_state(js, subject: str) -> StateChanged | None:
    try:
        message = await js.get_last_msg(STREAM_NAME, subject)
    except NotFoundError:
        return None
    event = decode_event(message.data)
    return event if isinstance(event, StateChanged) else None


async def still_in_room(js, subject: str, end: CallEnd, settle_seconds: float, poll: float = 0.02) -> bool:
    """Whether the room session that `end` ended still holds the recipient, per the log."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_seconds
    while True:
        state = await last_room_state(js, subject)
        if state is None or state.reason in LEAVING_REASONS:
            return False
        if state.seq > end.seq:
            return False  # logged in again after this end: a new session, not ours to end
        if loop.time() >= deadline:
            return True
        await asyncio.sleep(poll)


async def leave_room(client, end: CallEnd, tokens: TokenSource, settle_seconds: float = 0.5) -> Any:
    """onCallEnd's default action; returns the HangUpReply, or None when there was nothing to do."""
    subject = client.subjects.event_subject("room", "onStateChanged", end.callID, end.recipient)
    if not await still_in_room(client.nc.jetstream(), subject, end, settle_seconds):
        return None
    token = await require_token(tokens, end.recipient, "onCallEnd's defaultAction")
    try:
        return await client.hang_up(end.callID, end.recipient, command_id=f"leave-{end.eventID}", token=token)
    except Forbidden as refused:
        if refused.code == "not_a_member":
            return None
        raise


async def dial_back(client, clicked: IncomingMissedCallClicked, tokens: TokenSource) -> Any:
    """onIncomingMissedCallClicked's default action; returns the SendReply, or None if already done."""
    if clicked.dialBack:
        return None
    me = next((user for user in clicked.callees if user.id == clicked.recipient), User(id=clicked.recipient))
    token = await require_token(tokens, me.id, "onIncomingMissedCallClicked's defaultAction")
    return await client.send_invitation(
        me, [clicked.caller], clicked.callType, custom_data=clicked.customData,
        command_id=f"dialBack-{clicked.eventID}", token=token,
    )


def default_action_for(client, event: Any, tokens: TokenSource, settle_seconds: float) -> DefaultAction | None:
    if isinstance(event, CallEnd):
        return DefaultAction(lambda: leave_room(client, event, tokens, settle_seconds))
    if isinstance(event, IncomingMissedCallClicked):
        return DefaultAction(lambda: dial_back(client, event, tokens))
    return None

