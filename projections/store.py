"""The read models' SQLite file: schema, one write transaction per batch, and the position.

Every batch writes its view changes and the stream sequence it reached in one
transaction, so after a crash the file holds either the whole batch or none of it, and
`position()` says exactly which events are in it. WAL lets queries read while the
projector writes.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

FILE_NAME = "projections.sqlite"
SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS position (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    stream_seq INTEGER NOT NULL,  -- every event up to this stream sequence is applied
    stream_ts INTEGER NOT NULL    -- its time in the stream, ns since the epoch
);
CREATE TABLE IF NOT EXISTS timeline (
    seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL, event_id TEXT NOT NULL, data BLOB NOT NULL  -- the event's JSON
);
CREATE INDEX IF NOT EXISTS timeline_by_call ON timeline (call_id, seq);
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY, first_seq INTEGER NOT NULL, active INTEGER NOT NULL, doc BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS active_calls ON calls (first_seq) WHERE active = 1;
CREATE TABLE IF NOT EXISTS user_calls (
    user_id TEXT NOT NULL, call_id TEXT NOT NULL, role TEXT NOT NULL, first_seq INTEGER NOT NULL,
    missed INTEGER NOT NULL, PRIMARY KEY (user_id, call_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_by_user ON user_calls (user_id, first_seq);
CREATE INDEX IF NOT EXISTS missed_by_user ON user_calls (user_id, first_seq) WHERE missed = 1;
CREATE TABLE IF NOT EXISTS devices (user_id TEXT PRIMARY KEY, doc BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS undecodable (seq INTEGER PRIMARY KEY, subject TEXT NOT NULL, data TEXT NOT NULL,
                                        error TEXT NOT NULL);
"""

# A batch is written by ONE statement: inserting it into a temp table whose BEFORE
# trigger spreads it over the views and the position, then drops the staging row. One
# statement is one transaction (autocommit), and SQLite runs it in a single step without
# the GIL, so a writer thread never waits for the event loop (executemany would take the
# GIL back for every row). Rows come as JSON arrays; event and view JSON, the bulk of the
# bytes, come as one blob per table that the rows point into (offset, length), so SQLite
# never parses them.
BATCH_TRIGGER = """
CREATE TEMP TABLE IF NOT EXISTS batch_in (
    timeline TEXT, timeline_blob BLOB, calls TEXT, calls_blob BLOB, devices TEXT, devices_blob BLOB,
    user_calls TEXT, undecodable TEXT, seq INTEGER, ts INTEGER);
CREATE TEMP TRIGGER IF NOT EXISTS apply_batch BEFORE INSERT ON batch_in BEGIN
    INSERT INTO timeline SELECT value->>0, value->>1, value->>2, substr(NEW.timeline_blob, value->>3, value->>4)
        FROM json_each(NEW.timeline);
    INSERT OR REPLACE INTO calls SELECT value->>0, value->>1, value->>2, substr(NEW.calls_blob, value->>3, value->>4)
        FROM json_each(NEW.calls);
    INSERT OR REPLACE INTO devices SELECT value->>0, substr(NEW.devices_blob, value->>1, value->>2)
        FROM json_each(NEW.devices);
    INSERT OR REPLACE INTO user_calls SELECT value->>0, value->>1, value->>2, value->>3, value->>4
        FROM json_each(NEW.user_calls);
    INSERT OR IGNORE INTO undecodable SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(NEW.undecodable);
    UPDATE position SET stream_seq = NEW.seq, stream_ts = NEW.ts WHERE id = 1;
    SELECT RAISE(IGNORE);
END;
"""
_encode = msgspec.json.Encoder().encode

VIEW_TABLES = ("timeline", "calls", "user_calls", "devices", "undecodable")


class BlobRows:
    """Rows whose last column is bytes: the bytes go into one blob, the row keeps (offset, length)."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.parts: list[bytes] = []
        self.offset = 1  # substr() counts from 1

    def add(self, data: bytes, *fields) -> None:
        size = len(data)
        self.rows.append((*fields, self.offset, size))
        self.parts.append(data)
        self.offset += size

    def extend(self, datas: list[bytes], *columns: list) -> None:
        """Add many rows at once: row i is (columns[0][i], ...) + datas[i]."""
        lengths = [len(data) for data in datas]
        self.rows.extend(zip(*columns, itertools.accumulate(lengths, initial=self.offset), lengths))
        self.parts.extend(datas)
        self.offset += sum(lengths)

    def __len__(self) -> int:
        return len(self.rows)

    def encode(self) -> tuple[str, bytes]:
        return _encode(self.rows).decode(), b"".join(self.parts)


@dataclass
class Batch:
    """Everything one transaction writes."""

    timeline: BlobRows = field(default_factory=BlobRows)  # (seq, call_id, event_id) + event JSON
    calls: BlobRows = field(default_factory=BlobRows)  # (call_id, first_seq, active) + view JSON
    devices: BlobRows = field(default_factory=BlobRows)  # (user_id,) + view JSON
    user_calls: list[tuple] = field(default_factory=list)  # (user_id, call_id, role, first_seq, missed)
    undecodable: list[tuple] = field(default_factory=list)  # (seq, subject, data as text, error)

    def encode(self, position: tuple[int, int]) -> tuple:
        """The parameters of the one statement that writes this batch."""
        return (*self.timeline.encode(), *self.calls.encode(), *self.devices.encode(),
                _encode(self.user_calls).decode(), _encode(self.undecodable).decode(), *position)


def dump(db: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every row of every view table, in key order (to compare two files)."""
    keys = {"timeline": "seq", "calls": "call_id", "user_calls": "user_id, call_id", "devices": "user_id",
            "undecodable": "seq"}
    return {table: db.execute(f"SELECT * FROM {table} ORDER BY {keys[table]}").fetchall() for table in VIEW_TABLES}


def connect(path: Path | str, *, building: bool = False, readonly: bool = False) -> sqlite3.Connection:
    """WAL, so queries (and the projector's cache misses) read while a batch is written. A file
    being rebuilt skips fsync: a failed rebuild is thrown away."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'OFF' if building else 'NORMAL'}")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class ProjectionStore:
    """One SQLite file of read models: a write connection (the projector's) and a read one (queries')."""

    def __init__(self, path: Path | str, *, building: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = connect(self.path, building=building)
        self.db.executescript(SCHEMA)
        self.db.executescript(BATCH_TRIGGER)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        self.db.execute("INSERT OR IGNORE INTO position VALUES (1, 0, 0)")
        self._reader: sqlite3.Connection | None = None

    @property
    def reader(self) -> sqlite3.Connection:
        """A read-only connection for queries (WAL: it reads while the projector writes)."""
        if self._reader is None:
            self._reader = connect(self.path, readonly=True)
        return self._reader

    def position(self) -> tuple[int, int]:
        """(stream sequence, its stream time in ns) of the last applied event; (0, 0) when empty."""
        return self.db.execute("SELECT stream_seq, stream_ts FROM position").fetchone()

    def committed_docs(self, table: str, keys: set[str]) -> list[tuple[str, bytes]]:
        """(key, doc) of the `calls` or `devices` rows among `keys`, as last committed (reader connection)."""
        if not keys:
            return []
        key = {"calls": "call_id", "devices": "user_id"}[table]
        return self.reader.execute(f"SELECT {key}, doc FROM {table} WHERE {key} IN (SELECT value FROM json_each(?))",
                                   (_encode(list(keys)).decode(),)).fetchall()

    # --- one transaction per batch ---------------------------------------------------
    def write(self, parameters: tuple) -> None:
        """Write one encoded batch (`Batch.encode`) and its position, all or nothing."""
        self.db.execute("INSERT INTO batch_in VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", parameters)

    # --- whole file ----------------------------------------------------------------------
    def dump(self) -> dict[str, list[tuple]]:
        return dump(self.db)

    def seal(self) -> None:
        """Make a rebuilt file self-contained (no -wal beside it) and durable, then close it."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("PRAGMA journal_mode=DELETE")
        self.db.close()
        with open(self.path, "rb") as handle:
            os.fsync(handle.fileno())

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.db.close()


def install(fresh: Path, live: Path) -> None:
    """Atomically put `fresh` in place of `live`; only while no connection has `live` open
    (a -wal or -shm left beside `live` belongs to the old file and is removed with it)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    os.replace(fresh, live)
    directory = os.open(live.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# --- the data folder's projector lock ------------------------------------------------------
# A running projector holds an exclusive flock on `projections.lock` for its whole life
# (the kernel drops it when the process dies, however it dies), so there is one projector
# per projections file, and the rebuild's swap knows whether one is running.
LOCK_NAME = "projections.lock"


class DataLock:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
