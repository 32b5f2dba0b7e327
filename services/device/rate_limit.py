"""Rate limit for repeated device reports: one token bucket per (callID, userID).

A report that changes nothing (a repeat, or a retry of an answered commandID) costs no
store access, but a client stuck in a loop can still send thousands a second. Each such
answer takes one token from the reporter's bucket for that call:

- `REPEATS_PER_SECOND` = 20 tokens are added back per second (sustained rate),
- `REPEAT_BURST` = 40 tokens at most (a client may repeat 40 times at once, e.g. after
  a reconnect that re-sends its whole device state a few times),
- with no token left the report is refused with 429 and `retry_after` says when the next
  token arrives.

Reports that change something are never limited here: they write events, and the domain
already turns every value they carry into at most one event.

Pure: the clock (monotonic seconds) is passed in, nothing else is read. Buckets that are
full again carry no information, so they are dropped once there are many keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

REPEATS_PER_SECOND = 20.0
REPEAT_BURST = 40.0
MAX_TRACKED_KEYS = 10_000
_EPSILON = 1e-9  # float sums of refills must not lose a whole token


@dataclass
class _Bucket:
    tokens: float
    at: float  # clock reading when `tokens` was computed


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0  # seconds until one token is back (0 when allowed)


class RepeatLimiter:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        rate: float = REPEATS_PER_SECOND,
        burst: float = REPEAT_BURST,
        max_keys: int = MAX_TRACKED_KEYS,
    ):
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._prune_above = max_keys

    def take(self, key: str) -> Verdict:
        """Spend one token of `key`'s bucket if there is one."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._prune_if_crowded(now)
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, at=now)
        else:
            bucket.tokens = self._refilled(bucket, now)
            bucket.at = now
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return Verdict(True)
        bucket.tokens = max(bucket.tokens, 0.0)
        return Verdict(False, retry_after=(1.0 - bucket.tokens) / self.rate)

    def tokens(self, key: str) -> float:
        """Tokens `key` could spend now (the burst for an unknown key)."""
        bucket = self._buckets.get(key)
        return self.burst if bucket is None else self._refilled(bucket, self.clock())

    def tracked_keys(self) -> int:
        return len(self._buckets)

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        elapsed = max(0.0, now - bucket.at)  # a clock that steps back refills nothing
        return min(self.burst, bucket.tokens + elapsed * self.rate)

    def _prune_if_crowded(self, now: float) -> None:
        """Drop full buckets when there are many keys; amortised by doubling the threshold."""
        if len(self._buckets) < self._prune_above:
            return
        full = [key for key, bucket in self._buckets.items() if self._refilled(bucket, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        self._prune_above = max(self.max_keys, 2 * len(self._buckets))
