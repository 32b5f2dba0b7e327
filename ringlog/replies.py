"""Typed replies of the commands (ARCHITECTURE.md 4: at least `callID` and the `eventIDs` written).

Unknown fields in a reply are ignored, so a newer service does not break an older client.
The AsyncAPI document (schemas/asyncapi.py) takes the reply schemas from these Structs.
"""

from __future__ import annotations

import msgspec

from schemas.types import CallID, User


class CommandReply(msgspec.Struct, frozen=True, kw_only=True):
    """Every successful command: the call and the ids of the events written (empty for a repeat)."""

    callID: str
    eventIDs: list[str] = []


class SendReply(CommandReply, frozen=True):
    """invitation.send: `callID` is the generated one when the command had none."""


class MissedCallClickReply(CommandReply, frozen=True):
    """invitation.missed_call_click: the dial-back invitation's call, or why it failed."""

    dialBackCallID: str | None = None
    dialBackError: str | None = None


class JoinReply(CommandReply, frozen=True):
    """room.join: the room session and the members now, in join order."""

    roomSessionID: str | None = None
    members: list[str] = []


class HangUpReply(CommandReply, frozen=True):
    """room.hang_up: `confirmed` is the hang-up hook's answer (false: the hang-up was vetoed)."""

    confirmed: bool = True


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a refused command or query (with header `Nats-Service-Error-Code`)."""

    error: ErrorDetail


class HangUpHookRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the room service asks on `ringlog.hook.onHangUpConfirmation.<callID>.<userID>`;
    the answer is the JSON `true` (hang up) or `false` (veto)."""

    callID: CallID
    user: User


# (service, verb) -> reply type
REPLY_TYPES: dict[tuple[str, str], type[CommandReply]] = {
    ("invitation", "send"): SendReply,
    ("invitation", "accept"): CommandReply,
    ("invitation", "decline"): CommandReply,
    ("invitation", "cancel"): CommandReply,
    ("invitation", "received"): CommandReply,
    ("invitation", "missed_call_click"): MissedCallClickReply,
    ("room", "join"): JoinReply,
    ("room", "hang_up"): HangUpReply,
    ("room", "kick"): CommandReply,
    ("room", "report_state"): CommandReply,
    ("device", "report"): CommandReply,
}


def reply_type(service: str, verb: str) -> type[CommandReply]:
    return REPLY_TYPES.get((service, verb), CommandReply)
