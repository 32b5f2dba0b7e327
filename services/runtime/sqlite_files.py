"""Plain SQLite connections to a service store's file: the hot reads and the group commit.

eventsourcing's recorder creates the tables and serves every other backend (in-memory
SQLite in tests, PostgreSQL); on a SQLite file these connections do the two things the
services do per command, at a fraction of its cost (docs/performance.md, steps 2 and 21).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import NamedTuple, Sequence

import msgspec


class _When(msgspec.Struct):
    occurredAt: str = ""


_decode_when = msgspec.json.Decoder(_When).decode


def _occurred_at(state: bytes) -> str:
    return _decode_when(state).occurredAt


def shift(timestamp: str, seconds: float) -> str:
    """An occurredAt string moved by `seconds` (same format, so strings compare in time order)."""
    moment = datetime.fromisoformat(timestamp) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sqlite_file_of(recorder) -> str | None:
    """The SQLite file an eventsourcing recorder writes; None for in-memory SQLite or another backend."""
    pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    if pool is None or not hasattr(pool, "db_name") or pool.is_sqlite_memory_mode:
        return None
    return pool.db_name


class StoredRow(NamedTuple):
    """A row of the notification log, as the relay and the views read it."""

    id: int
    topic: str
    state: bytes


class SQLiteReader:
    """The hot read path (one stream's rows) on a plain connection to the recorder's SQLite file.

    eventsourcing's own `get` costs ~120 us per call through its pool and mapper; this
    costs ~10 us.
    """

    def __init__(self, path: str, table: str):
        self._db = sqlite3.connect(path, uri=True, check_same_thread=False, isolation_level=None)
        self._table = table
        self._query = f"SELECT state FROM {table} WHERE originator_id=? ORDER BY originator_version"
        self._rows_query = f"SELECT rowid, topic, state FROM {table} WHERE rowid>? ORDER BY rowid LIMIT ?"

    @classmethod
    def for_recorder(cls, recorder) -> "SQLiteReader | None":
        path = sqlite_file_of(recorder)
        return cls(path, recorder.events_table_name) if path else None

    def recent_streams(self, topic: str, window_seconds: float, not_an_event: str) -> list[str]:
        """Streams with a `topic` row within `window_seconds` before the newest event (rows of
        topic `not_an_event`, command records, carry no time)."""
        newest = self._db.execute(
            f"SELECT state FROM {self._table} WHERE topic != ? ORDER BY rowid DESC LIMIT 1", (not_an_event,)
        ).fetchone()
        if newest is None:
            return []
        cutoff = shift(_occurred_at(newest[0]), -window_seconds)
        streams: dict[str, None] = {}
        rows = self._db.execute(f"SELECT originator_id, state FROM {self._table} WHERE topic=? ORDER BY rowid DESC", (topic,))
        for stream, state in rows:
            if _occurred_at(state) < cutoff:
                break
            streams[stream] = None
        return list(streams)[::-1]

    def rows_after(self, after: int, limit: int) -> list[StoredRow]:
        rows = self._db.execute(self._rows_query, (after, limit))
        return [StoredRow(*row) for row in rows]

    def states(self, stream: str) -> list[bytes]:
        return [row[0] for row in self._db.execute(self._query, (stream,))]

    def close(self) -> None:
        self._db.close()


class SQLiteWriter:
    """Group commits on a plain connection to the recorder's SQLite file: `BEGIN IMMEDIATE`,
    one multi-row INSERT per 200 rows, `COMMIT` (fsynced: synchronous=FULL).

    Three statements a group, where eventsourcing's insert runs one per row: each step
    releases and retakes the GIL, which a busy loop made cost ~0.2 ms a row when commits
    ran in a worker thread (docs/performance.md, steps 21 and 29). Same table and rows as
    eventsourcing's recorder.
    """

    CHUNK = 200

    def __init__(self, path: str, table: str, timeout: float):
        self._db = sqlite3.connect(path, timeout=timeout, uri=True, check_same_thread=False,
                                   isolation_level=None, cached_statements=256)
        self._db.execute("PRAGMA synchronous=FULL")
        self._table = table
        self._statements: dict[int, str] = {}

    @classmethod
    def for_recorder(cls, recorder, timeout: float) -> "SQLiteWriter | None":
        path = sqlite_file_of(recorder)
        return cls(path, recorder.events_table_name, timeout) if path else None

    def _statement(self, rows: int) -> str:
        statement = self._statements.get(rows)
        if statement is None:
            statement = self._statements[rows] = (
                f"INSERT INTO {self._table} (originator_id, originator_version, topic, state) VALUES "
                + ",".join(["(?,?,?,?)"] * rows))
        return statement

    def insert(self, rows: Sequence[tuple[str, int, str, bytes]]) -> int:
        """Insert every row in one transaction; the rowid of the first (the rest follow it:
        a new row's rowid is one more than the table's largest, and the write lock is ours)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(rows), self.CHUNK):
                chunk = rows[start:start + self.CHUNK]
                last = db.execute(self._statement(len(chunk)), [value for row in chunk for value in row]).lastrowid
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return last - len(rows) + 1

    def close(self) -> None:
        self._db.close()
