"""Where the outbox relay has got to: the last store position the stream acknowledged."""

from __future__ import annotations

import os
import sqlite3


class RelayPosition:
    """The last store position the relay has seen acknowledged by the stream.

    A hint, kept in a small file beside the store (`<store>.relay-<name>`): one `pwrite`
    per published batch, no fsync, no SQLite transaction. Losing its last updates (only a
    machine crash can: the page cache survives a killed process) re-publishes those
    events, which the stream drops as duplicates. A store from before this file existed
    kept the position in its `ringlog_relay` table: it is read once from there.
    """

    _SIZE = 8

    def __init__(self, sqlite_path: str, name: str):
        self._path = f"{sqlite_path}.relay-{name}"
        fresh = not os.path.exists(self._path)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        if fresh:
            self.set(_position_in_table(sqlite_path, name))

    def get(self) -> int:
        data = os.pread(self._fd, self._SIZE, 0)
        return int.from_bytes(data, "little") if len(data) == self._SIZE else 0

    def set(self, position: int) -> None:
        os.pwrite(self._fd, position.to_bytes(self._SIZE, "little"), 0)

    def close(self) -> None:
        os.close(self._fd)


def _position_in_table(sqlite_path: str, name: str) -> int:
    if not os.path.exists(sqlite_path):
        return 0
    db = sqlite3.connect(sqlite_path)
    try:
        row = db.execute("SELECT position FROM ringlog_relay WHERE name=?", (name,)).fetchone()
    except sqlite3.OperationalError:  # no such table
        row = None
    finally:
        db.close()
    return row[0] if row else 0
