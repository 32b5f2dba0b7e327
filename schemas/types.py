"""Constrained field types and the small value objects shared by events and commands."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.enums import ZegoSignalingPluginInvitationUserState
from schemas.ids import CALL_ID_MAX_BYTES, COMMAND_ID_MAX_BYTES, USER_ID_MAX_BYTES

ID_CHARS = r"[A-Za-z0-9~!@#$%^&*()_+=\-`;',.<>/\\]"

# `$(?!\n)`: Python's `$` also matches before a final newline; the lookahead refuses it
# (and means the same in JSON Schema's ECMA-262 regexes).
ID_PATTERN = f"^{ID_CHARS}+$(?!\n)"
UserID = Annotated[str, msgspec.Meta(min_length=1, max_length=USER_ID_MAX_BYTES, pattern=ID_PATTERN)]
CallID = Annotated[str, msgspec.Meta(min_length=1, max_length=CALL_ID_MAX_BYTES, pattern=ID_PATTERN)]
CommandID = Annotated[str, msgspec.Meta(min_length=1, max_length=COMMAND_ID_MAX_BYTES, pattern=ID_PATTERN)]
UserName = Annotated[str, msgspec.Meta(max_length=256)]
CUSTOM_DATA_MAX_BYTES = 4096
CustomData = Annotated[str, msgspec.Meta(max_length=CUSTOM_DATA_MAX_BYTES)]
TimeoutSeconds = Annotated[int, msgspec.Meta(ge=1, le=600)]
Timestamp = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{3}Z$(?!\n)",
        description="UTC, ISO 8601, ms",
    ),
]


class User(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """ZegoCallUser / ZegoUIKitUser."""

    id: UserID
    name: UserName = ""


class InvitationUserInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """ZegoSignalingPluginInvitationUserInfo."""

    userID: UserID
    state: ZegoSignalingPluginInvitationUserState
    extendedData: str = ""


class ZegoUIKitError(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The kit's error: code 3-LL-TTT-CCC, a message, and the method that failed."""

    code: int
    message: str
    method: str

