"""Device states in memory, keyed by `domain.aggregate_key`, so a report never re-reads history.

Each entry holds the folded `DeviceState` and the answers of the last few commands that
wrote events on that aggregate (commandID -> reply), so a retried command gets its first
answer back without a store read. On a miss the entry is rebuilt from the store: the
state by folding the stream, the recent answers from the events' `causationID`s (a
device command that wrote anything wrote events, and its reply is exactly
`{"callID", "eventIDs"}`).

The cache is bounded (least recently used entries go first); an evicted entry is simply
loaded again on its next report.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

from schemas.events import Event
from services.device import domain
from services.runtime.store import EventStore

MAX_DEVICES = 50_000
ANSWERS_PER_DEVICE = 8

Reply = dict[str, Any]


@dataclass
class TrackedDevice:
    state: domain.DeviceState | None
    answers: OrderedDict[str, Reply] = field(default_factory=OrderedDict)

    def remember(self, command_id: str, reply: Reply, keep: int) -> None:
        self.answers[command_id] = reply
        self.answers.move_to_end(command_id)
        while len(self.answers) > keep:
            self.answers.popitem(last=False)


class DeviceStates:
    def __init__(self, store: EventStore, *, max_devices: int = MAX_DEVICES, answers_per_device: int = ANSWERS_PER_DEVICE):
        self.store = store
        self.max_devices = max_devices
        self.answers_per_device = answers_per_device
        self._tracked: OrderedDict[str, TrackedDevice] = OrderedDict()
        self.loads = 0  # store reads on a miss (for tests and diagnostics)

    def get(self, call_id: str, user_id: str) -> TrackedDevice:
        key = domain.aggregate_key(call_id, user_id)
        tracked = self._tracked.get(key)
        if tracked is None:
            tracked = self._load(key, call_id)
            self._tracked[key] = tracked
            while len(self._tracked) > self.max_devices:
                self._tracked.popitem(last=False)
        else:
            self._tracked.move_to_end(key)
        return tracked

    def record(self, tracked: TrackedDevice, events: Sequence[Event]) -> None:
        """Follow a staged decision: fold its events into the entry (from `get`)."""
        tracked.state = domain.fold(events, tracked.state)

    def remember(self, tracked: TrackedDevice, command_id: str, reply: Reply) -> None:
        """Keep a committed command's answer for a retry."""
        tracked.remember(command_id, reply, self.answers_per_device)

    def forget_keys(self, keys: set[str]) -> None:
        """Drop entries that may be stale (a failed commit group, another writer)."""
        for key in keys:
            self._tracked.pop(key, None)

    def __len__(self) -> int:
        return len(self._tracked)

    def _load(self, key: str, call_id: str) -> TrackedDevice:
        self.loads += 1
        events = self.store.load(key)
        tracked = TrackedDevice(domain.fold(events))
        by_command: OrderedDict[str, list[str]] = OrderedDict()
        for event in events:
            by_command.setdefault(event.causationID, []).append(event.eventID)
        for command_id, event_ids in by_command.items():
            tracked.remember(command_id, {"callID": call_id, "eventIDs": event_ids}, self.answers_per_device)
        return tracked
