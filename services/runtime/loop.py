"""The event loop every ringlog process runs on: uvloop (libuv) where installed, else asyncio's.

`RINGLOG_EVENT_LOOP=asyncio` chooses asyncio's own loop (to compare, or to debug).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps other platforms working
    uvloop = None


def run(main: Coroutine[Any, Any, T]) -> T:
    if uvloop is not None and os.environ.get("RINGLOG_EVENT_LOOP", "uvloop") != "asyncio":
        return uvloop.run(main)
    return asyncio.run(main)
