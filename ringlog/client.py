"""Python client for ringlog: commands with typed replies and errors, per-callback subscriptions.

    client = await Client.connect("nats://127.0.0.1:4222", token_provider=my_tokens)
    sent = await client.send_invitation("alice", ["bob"], "videoCall")      # SendReply
    await client.subscribe("onIncomingCallReceived", handler, user="bob")   # typed events
    subscriber = client.callbacks(user="bob", invitation_events=..., events=...)

`Client.command(service, verb, payload)` sends any command as a dict and returns the
reply dict; the typed methods build the payload from `schemas.commands` and decode the
reply into a `ringlog.replies` Struct. Every refusal raises a `CommandError` subclass
(`ringlog.errors`), with `.status`, `.code` and `.message`.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import msgspec
import nats
from msgspec import UNSET
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from ringlog.callbacks import (  # noqa: F401 - re-exported: the handler holders of the reference page
    AudioVideoEvents, CallEvents, InvitationEvents, RoomEvents, UserEvents, ZegoCallAudioVideoEvents,
    ZegoCallRoomEvents, ZegoCallUserEvents, ZegoUIKitPrebuiltCallEvents, ZegoUIKitPrebuiltCallInvitationEvents,
)
from ringlog.errors import (  # noqa: F401 - re-exported: `from ringlog.client import CommandError`
    BadRequest, CommandError, Conflict, Forbidden, NotFound, RateLimited, ServerError, ServiceUnavailable,
    Unauthenticated, error_for,
)
from ringlog.identity import TokenProvider, UserLike, as_user, as_users, resolve_token
from ringlog.hang_up_hook import HangUpHookResponder
from ringlog.replies import CommandReply, HangUpReply, JoinReply, MissedCallClickReply, SendReply, reply_type
from ringlog.subscriber import CallbackSubscriber
from schemas import commands as cmd
from schemas.ids import new_uuid
from schemas.subjects import DEFAULT_PREFIX, Subjects
from services.runtime.requests import Reply, Requests, RequestsClosed

__all__ = [
    "Client", "connect", "new_command_id", "CallbackSubscriber", "HangUpHookResponder",
    "CommandError", "BadRequest", "Unauthenticated", "Forbidden", "NotFound", "Conflict", "RateLimited",
    "ServerError", "ServiceUnavailable",
    "ZegoUIKitPrebuiltCallInvitationEvents", "ZegoUIKitPrebuiltCallEvents", "ZegoCallUserEvents",
    "ZegoCallRoomEvents", "ZegoCallAudioVideoEvents",
    "InvitationEvents", "CallEvents", "UserEvents", "RoomEvents", "AudioVideoEvents",
]


def new_command_id() -> str:
    """A time-ordered id (UUID version 7): the services' stores index command records by it,
    and ids that follow the clock keep those index writes on the newest pages."""
    return new_uuid()


async def connect(url: str, token: str | None = None, prefix: str = DEFAULT_PREFIX, **options: Any) -> "Client":
    """`await ringlog.client.connect(url, token_provider=...)`: the same as `Client.connect`."""
    return await Client.connect(url, token, prefix, **options)


class Client:
    def __init__(self, nc: NatsClient, token: str | None = None, prefix: str = DEFAULT_PREFIX, timeout: float = 5.0,
                 token_provider: TokenProvider | None = None):
        self.nc = nc
        self.token = token
        self.token_provider = token_provider
        self.subjects = Subjects(prefix)
        self.timeout = timeout
        # one inbox subscription per connection, opened by the first request (see services.runtime.requests);
        # a stand-in for nats-py's client (tests, adapters) gets its own `request` called instead
        self._requests = Requests(nc) if isinstance(nc, NatsClient) else None

    @classmethod
    async def connect(cls, url: str, token: str | None = None, prefix: str = DEFAULT_PREFIX, *,
                      timeout: float = 5.0, token_provider: TokenProvider | None = None, **options: Any) -> "Client":
        """Connect to NATS; `options` go to `nats.connect` (name, user_credentials, tls ...)."""
        return cls(await nats.connect(url, **options), token, prefix, timeout, token_provider)

    async def close(self) -> None:
        await self.nc.drain()
        if self._requests is not None:
            await self._requests.close()

    def with_token(self, token: str) -> "Client":
        client = Client(self.nc, token, self.subjects.prefix, self.timeout, self.token_provider)
        client._requests = self._requests
        return client

    # --- raw commands -----------------------------------------------------------------
    async def command(self, service: str, verb: str, payload: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        """Send one command; a `commandID` is added when missing. Raises CommandError."""
        if "commandID" not in payload:
            payload = {"commandID": new_command_id(), **payload}
        token = token or await self._token_for(service, verb, payload)
        return await self.request(self.subjects.command(service, verb), msgspec.json.encode(payload), token)

    async def request(self, subject: str, data: bytes, token: str | None = None) -> Any:
        """One request/reply (commands and queries); a service error raises its CommandError subclass."""
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            if self._requests is not None:
                reply = await self._requests.request(subject, data, self.timeout, headers)
            else:
                msg = await self.nc.request(subject, data, timeout=self.timeout, headers=headers)
                reply = Reply(msg.data, headers=msg.headers)
        except NoRespondersError as error:
            raise ServiceUnavailable(f"no service answers on {subject}") from error
        except NatsTimeout as error:
            raise ServiceUnavailable(f"no answer on {subject} within {self.timeout}s") from error
        except RequestsClosed as error:
            raise ServiceUnavailable(f"no answer on {subject}: the connection closed") from error
        status = reply.header("Nats-Service-Error-Code")
        body = msgspec.json.decode(reply.data) if reply.data else {}
        if status:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            message = error.get("message", reply.header("Nats-Service-Error") or "")
            raise error_for(int(status), error.get("code", ""), message)
        return body

    async def query(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        """A projection query (`ringlog.query.<name>`): call, timeline, active_calls, history, missed ..."""
        return await self.request(self.subjects.query(name), msgspec.json.encode(payload or {}))

    async def _token_for(self, service: str, verb: str, payload: dict[str, Any]) -> str | None:
        if self.token or self.token_provider is None:
            return self.token
        command_type = cmd.BY_SUBJECT_VERB.get((service, verb))
        actor = payload.get(command_type.actor_field) if command_type else None
        actor_id = actor.get("id") if isinstance(actor, dict) else None
        return await resolve_token(self.token_provider, actor_id) if isinstance(actor_id, str) else None

    # --- typed commands ---------------------------------------------------------------
    async def execute(self, command: cmd.Command, token: str | None = None) -> CommandReply:
        """Send a `schemas.commands` Struct; the reply is decoded into its typed reply Struct."""
        token = token or self.token or await resolve_token(self.token_provider, command.actor.id)
        subject = self.subjects.command(command.service, command.verb)
        body = await self.request(subject, msgspec.json.encode(command), token)
        return msgspec.convert(body, reply_type(command.service, command.verb))

    async def send_invitation(
        self, caller: UserLike, callees: list[UserLike], call_type: str = "voiceCall", *, call_id: str | None = None,
        custom_data: str = "", timeout_seconds: int = 60, command_id: str | None = None, token: str | None = None,
    ) -> SendReply:
        command = cmd.Send(
            commandID=command_id or new_command_id(), caller=as_user(caller), callees=as_users(callees),
            callType=call_type, callID=call_id, customData=custom_data, timeoutSeconds=timeout_seconds,
        )
        return await self.execute(command, token)  # type: ignore[return-value]

    async def accept(self, call_id: str, callee: UserLike, *, custom_data: str = "",
                     command_id: str | None = None, token: str | None = None) -> CommandReply:
        command = cmd.Accept(commandID=command_id or new_command_id(), callID=call_id, callee=as_user(callee),
                             customData=custom_data)
        return await self.execute(command, token)

    async def decline(self, call_id: str, callee: UserLike, *, custom_data: str = "", reason: str = "decline",
                      command_id: str | None = None, token: str | None = None) -> CommandReply:
        command = cmd.Decline(commandID=command_id or new_command_id(), callID=call_id, callee=as_user(callee),
                              customData=custom_data, reason=reason)  # type: ignore[arg-type]
        return await self.execute(command, token)

    async def cancel(self, call_id: str, caller: UserLike, *, custom_data: str = "",
                     command_id: str | None = None, token: str | None = None) -> CommandReply:
        command = cmd.Cancel(commandID=command_id or new_command_id(), callID=call_id, caller=as_user(caller),
                             customData=custom_data)
        return await self.execute(command, token)

    async def received(self, call_id: str, callee: UserLike, *, command_id: str | None = None,
                       token: str | None = None) -> CommandReply:
        command = cmd.Received(commandID=command_id or new_command_id(), callID=call_id, callee=as_user(callee))
        return await self.execute(command, token)

    async def missed_call_click(self, call_id: str, user: UserLike, *, dial_back: bool = True,
                                command_id: str | None = None, token: str | None = None) -> MissedCallClickReply:
        command = cmd.MissedCallClick(commandID=command_id or new_command_id(), callID=call_id, user=as_user(user),
                                      dialBack=dial_back)
        return await self.execute(command, token)  # type: ignore[return-value]

    async def join(self, call_id: str, user: UserLike, *, command_id: str | None = None,
                   token: str | None = None) -> JoinReply:
        command = cmd.Join(commandID=command_id or new_command_id(), callID=call_id, user=as_user(user))
        return await self.execute(command, token)  # type: ignore[return-value]

    async def hang_up(self, call_id: str, user: UserLike, *, command_id: str | None = None,
                      token: str | None = None) -> HangUpReply:
        command = cmd.HangUp(commandID=command_id or new_command_id(), callID=call_id, user=as_user(user))
        return await self.execute(command, token)  # type: ignore[return-value]

    async def kick(self, call_id: str, kicker: UserLike, target: UserLike, *, command_id: str | None = None,
                   token: str | None = None) -> CommandReply:
        command = cmd.Kick(commandID=command_id or new_command_id(), callID=call_id, kicker=as_user(kicker),
                           target=as_user(target))
        return await self.execute(command, token)

    async def report_state(self, call_id: str, user: UserLike, reason: str, *, error_code: int = 0,
                           extended_data: dict[str, Any] | None = None, command_id: str | None = None,
                           token: str | None = None) -> CommandReply:
        command = cmd.ReportState(commandID=command_id or new_command_id(), callID=call_id, user=as_user(user),
                                  reason=reason, errorCode=error_code,  # type: ignore[arg-type]
                                  extendedData=dict(extended_data or {}))
        return await self.execute(command, token)

    async def device_report(
        self, call_id: str, user: UserLike, *, camera: Any = UNSET, front_facing_camera: Any = UNSET,
        microphone: Any = UNSET, audio_route: Any = UNSET, camera_exception: Any = UNSET,
        microphone_exception: Any = UNSET, command_id: str | None = None, token: str | None = None,
    ) -> CommandReply:
        """Report device state; only the fields given are sent (None is a valid exception value)."""
        command = cmd.DeviceReport(
            commandID=command_id or new_command_id(), callID=call_id, user=as_user(user), camera=camera,
            frontFacingCamera=front_facing_camera, microphone=microphone, audioRoute=audio_route,
            cameraException=camera_exception, microphoneException=microphone_exception,
        )
        return await self.execute(command, token)

    # --- subscriptions and hooks ------------------------------------------------------
    def callbacks(self, **options: Any) -> CallbackSubscriber:
        """A `CallbackSubscriber` (not started) on this connection; see ringlog.subscriber."""
        options.setdefault("token", self.token)
        options.setdefault("token_provider", self.token_provider)
        return CallbackSubscriber(self, **options)

    async def subscribe(self, callback_name: str, handler: Callable[[Any], Any], user: str | None = None,
                        call: str | None = None, **options: Any) -> CallbackSubscriber:
        """Live subscription to one callback type; `handler(event)` gets the typed event. Returns the
        started subscriber (`await subscriber.stop()` to end it)."""
        subscriber = self.callbacks(user=user, call=call, **options)
        subscriber.subscribe(callback_name, handler)
        await subscriber.start()
        return subscriber

    async def on_hang_up_confirmation(self, user: str, confirm: Callable[[str, Any], Awaitable[bool] | bool],
                                      call: str | None = None) -> HangUpHookResponder:
        """Answer the hang-up hook for `user`: `confirm(callID, user) -> bool`; False vetoes the hang-up
        (see ringlog.hang_up_hook). `await responder.stop()` ends it."""
        return await HangUpHookResponder(self.nc, self.subjects, user, confirm, call).start()
