"""What every pure domain shares: the context passed in, event stamping, and refusals.

A service's rules are `decide(state, command, ctx) -> list[Event]` and
`evolve(state, event) -> state`. Neither does I/O or reads a clock or makes a uuid:
time and ids come in through `Context`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, TypeVar

from schemas.enums import Source
from schemas.events import Error, Event
from schemas.types import ZegoUIKitError

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Context:
    now: datetime
    new_id: Callable[[], str]


def timestamp(moment: datetime) -> str:
    """The wire form of `occurredAt`: UTC, ISO 8601, milliseconds."""
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value)  # Python 3.11 reads the trailing Z as UTC


class Stamper:
    """Builds the events of one decision with a gapless `seq` after `version`."""

    def __init__(self, ctx: Context, *, source: Source, call_id: str, causation_id: str, version: int):
        self._ctx = ctx
        self._source = source
        self._call_id = call_id
        self._causation_id = causation_id
        self._occurred_at = timestamp(ctx.now)
        self.version = version

    def __call__(self, event_type: type[E], recipient: str, **payload) -> E:
        self.version += 1
        return event_type(
            eventID=self._ctx.new_id(),
            callID=self._call_id,
            recipient=recipient,
            seq=self.version,
            occurredAt=self._occurred_at,
            source=self._source,
            causationID=self._causation_id,
            **payload,
        )


class CommandRejected(Exception):
    """A command the rules refuse.

    `status` is the service error code (403 permission, 404 unknown call, 409 wrong
    state); `code` is a stable machine-readable string; `kit_code` and `method` fill the
    kit's ZegoUIKitError of the onError event recorded for the acting user (not for 404).
    """

    def __init__(self, status: int, code: str, message: str, *, kit_code: int, method: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.kit_code = kit_code
        self.method = method

    @property
    def records_error_event(self) -> bool:
        return self.status in (403, 409)

    def error_event(self, stamp: Stamper, recipient: str) -> Error:
        return stamp(Error, recipient, error=ZegoUIKitError(code=self.kit_code, message=self.message, method=self.method))


# Kit error codes, layout 3-LL-TTT-CCC (ARCHITECTURE.md section 3).
class KitCode:
    INVITATION_SEND = 301003001
    INVITATION_CANCEL = 301003002
    INVITATION_REFUSE = 301003003
    INVITATION_ACCEPT = 301003004
    INVITATION_RECEIVED = 301003005
    INVITATION_MISSED_CALL = 301003006
    ROOM_LOGIN = 300001003
    ROOM_LOGOUT = 300001004
    ROOM_KICK = 300001005
    ROOM_REPORT_STATE = 300001006
    DEVICE_REPORT = 300002001
