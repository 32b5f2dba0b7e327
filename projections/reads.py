"""The queries' answers, read from the projections file. JSON in (validated), JSON bytes out.

Stored view documents go out as they are (msgspec.Raw), never decoded and re-encoded.
Lists that can grow are paginated: `limit` (1-500, default 50) and an opaque `cursor`
taken from the previous page's `nextCursor` (null on the last page).
"""

from __future__ import annotations

import sqlite3
from typing import Annotated

import msgspec
from msgspec import Raw

from projections.call_view import CallView
from projections.device_view import DeviceView
from schemas.events import decode_event
from schemas.subjects import Subjects
from schemas.types import CallID, UserID
from services.runtime.errors import ServiceError

MAX_LIMIT = 500
Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,19}$", description="nextCursor of the previous page")]


class NoArguments(msgspec.Struct):
    pass


class CallQuery(msgspec.Struct, kw_only=True):
    callID: CallID


class Page(msgspec.Struct, kw_only=True):
    limit: Limit = 50
    cursor: Cursor | None = None


class TimelineQuery(Page, kw_only=True):
    callID: CallID


class UserQuery(msgspec.Struct, kw_only=True):
    userID: UserID


class UserPage(Page, kw_only=True):
    userID: UserID


def decode_query(data: bytes, query_type: type):
    """The request body as `query_type`; an empty body is `{}`. Raises msgspec errors naming the field."""
    return msgspec.json.decode(data or b"{}", type=query_type)


_encode = msgspec.json.encode
_call_decoder = msgspec.json.Decoder(CallView)


def _unknown_call(call_id: str) -> ServiceError:
    return ServiceError(404, "unknown_call", f"call {call_id} is not in the projections - at `$.callID`")


def _page(rows: list, limit: int, key_of) -> tuple[list, str | None]:
    """Rows of one page and the cursor of the next (rows holds limit + 1 when there is more)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(key_of(rows[-1]))
    return rows, None


def _before(cursor: str | None) -> int:
    return int(cursor) if cursor is not None else 2**63 - 1


def call(db: sqlite3.Connection, query: CallQuery) -> bytes:
    row = db.execute("SELECT doc FROM calls WHERE call_id = ?", (query.callID,)).fetchone()
    if row is None:
        raise _unknown_call(query.callID)
    return bytes(row[0])


def timeline(db: sqlite3.Connection, query: TimelineQuery, subjects: Subjects) -> bytes:
    after = int(query.cursor) if query.cursor is not None else 0
    rows = db.execute("SELECT seq, data FROM timeline WHERE call_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                      (query.callID, after, query.limit + 1)).fetchall()
    if not rows and after == 0 and db.execute("SELECT 1 FROM calls WHERE call_id = ?", (query.callID,)).fetchone() is None:
        raise _unknown_call(query.callID)
    rows, cursor = _page(rows, query.limit, lambda row: row[0])
    events = [{"seq": seq, "subject": subjects.event(decode_event(data)), "event": Raw(data)} for seq, data in rows]
    return _encode({"callID": query.callID, "events": events, "nextCursor": cursor})


def active_calls(db: sqlite3.Connection, query: Page) -> bytes:
    rows = db.execute("SELECT first_seq, doc FROM calls WHERE active = 1 AND first_seq < ? ORDER BY first_seq DESC "
                      "LIMIT ?", (_before(query.cursor), query.limit + 1)).fetchall()
    rows, cursor = _page(rows, query.limit, lambda row: row[0])
    return _encode({"calls": [Raw(doc) for _, doc in rows], "nextCursor": cursor})


def history(db: sqlite3.Connection, query: UserPage, missed_only: bool = False) -> bytes:
    """The user's calls, newest first: their role, whether they missed it, and the call."""
    rows = db.execute(
        "SELECT u.first_seq, u.role, u.missed, c.doc FROM user_calls u JOIN calls c ON c.call_id = u.call_id "
        f"WHERE u.user_id = ? AND u.first_seq < ? {'AND u.missed = 1' if missed_only else ''} "
        "ORDER BY u.first_seq DESC LIMIT ?", (query.userID, _before(query.cursor), query.limit + 1)).fetchall()
    rows, cursor = _page(rows, query.limit, lambda row: row[0])
    calls = [{"role": role, "missed": bool(missed), "call": Raw(doc)} for _, role, missed, doc in rows]
    return _encode({"userID": query.userID, "calls": calls, "nextCursor": cursor})


def room(db: sqlite3.Connection, query: CallQuery) -> bytes:
    row = db.execute("SELECT doc FROM calls WHERE call_id = ?", (query.callID,)).fetchone()
    if row is None:
        raise _unknown_call(query.callID)
    view = _call_decoder.decode(row[0])
    return _encode({"callID": view.callID, "roomSessionID": view.roomSessionID, "members": view.members,
                    "talkingSince": view.talkingSince})


def devices(db: sqlite3.Connection, query: UserQuery) -> bytes:
    """The user's devices as last reported; every value null when nothing was ever reported."""
    row = db.execute("SELECT doc FROM devices WHERE user_id = ?", (query.userID,)).fetchone()
    return bytes(row[0]) if row else _encode(DeviceView(userID=query.userID))
