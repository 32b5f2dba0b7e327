"""Expected events vs events received: lost, duplicated, unexpected, per callback type.

What is expected, as the run learns it (`Expectation`):
- every eventID a command reply returned (`returned`): known by id;
- the events no reply returns, known by count per (call, callback): the invitation
  timer's (`timer`), and an onError that a refused command (403/409) may write (`refused`).

What was received: `Seen` records from two sources, the live subscription (subscribed
before the first command) and the stream read back afterwards. `check` compares:

- lost: an expected event missing from either source (or a timer event short in count);
- duplicated: an event (by eventID) received more than once by either source;
- unexpected: an event of the run's calls that nothing explains.

An expected event seen nowhere has no known type: it is listed under the command that
returned it, e.g. `? (from room.join)`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class Seen:
    event_id: str
    callback: str
    call_id: str


@dataclass
class Expectation:
    by_id: dict[str, str] = field(default_factory=dict)  # eventID -> the command that returned it
    counted: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (call, callback) -> [low, high]

    def returned(self, event_ids: Iterable[str], label: str) -> None:
        for event_id in event_ids:
            self.by_id[event_id] = label

    def timer(self, call_id: str, events: dict[str, int]) -> None:
        for callback, count in events.items():
            bounds = self.counted.setdefault((call_id, callback), [0, 0])
            bounds[0] += count
            bounds[1] += count

    def refused(self, call_id: str) -> None:
        """A refused command may have written an onError event for its caller."""
        self.counted.setdefault((call_id, "onError"), [0, 0])[1] += 1

    @property
    def total(self) -> int:
        return len(self.by_id) + sum(low for low, _ in self.counted.values())


@dataclass
class Row:
    expected: int = 0
    stream: int = 0  # deliveries read back from the stream
    live: int = 0  # deliveries to the live subscription
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0

    def add(self, other: "Row") -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Verdict:
    rows: dict[str, Row]
    events: int  # distinct events of the run received (either source)

    @property
    def totals(self) -> Row:
        total = Row()
        for row in self.rows.values():
            total.add(row)
        return total

    @property
    def ok(self) -> bool:
        total = self.totals
        return total.lost == total.duplicated == total.unexpected == 0


def check(expect: Expectation, stream: Iterable[Seen], live: Iterable[Seen]) -> Verdict:
    stream_count: Counter = Counter()
    live_count: Counter = Counter()
    kind: dict[str, Seen] = {}
    for source, counts in ((stream, stream_count), (live, live_count)):
        for seen in source:
            counts[seen.event_id] += 1
            kind.setdefault(seen.event_id, seen)
    rows: dict[str, Row] = defaultdict(Row)

    def tally(row: Row, event_id: str) -> None:
        in_stream, in_live = stream_count[event_id], live_count[event_id]
        row.stream += in_stream
        row.live += in_live
        row.lost += in_stream == 0 or in_live == 0
        row.duplicated += in_stream > 1 or in_live > 1

    for event_id, label in expect.by_id.items():
        seen = kind.get(event_id)
        row = rows[seen.callback if seen else f"? (from {label})"]
        row.expected += 1
        tally(row, event_id)

    others: dict[tuple[str, str], list[str]] = defaultdict(list)
    for event_id, seen in kind.items():
        if event_id not in expect.by_id:
            others[(seen.call_id, seen.callback)].append(event_id)
    for key in set(others) | set(expect.counted):
        low, high = expect.counted.get(key, (0, 0))
        event_ids = others.get(key, [])
        row = rows[key[1]]
        row.expected += max(low, min(len(event_ids), high))
        row.lost += max(0, low - len(event_ids))
        row.unexpected += max(0, len(event_ids) - high)
        for event_id in event_ids:
            tally(row, event_id)
    return Verdict(dict(sorted(rows.items())), events=len(kind))
