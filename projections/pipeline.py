"""The apply loop: prepare a batch on the event loop while the previous one is written.

Decoding and folding need the GIL; SQLite's inserts and commit do not. So a batch is
prepared (decoded, folded, turned into rows) on the event loop, handed to one writer
thread for its transaction, and the next batch is prepared meanwhile. Writes stay in
log order (one writer, one batch in flight), and a batch is acknowledged only after
its commit.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable

from projections.projector import Message, Prepared, Projector

OnWritten = Callable[[Message], Awaitable[None]]


async def _nothing(message: Message) -> None:
    return None


class Pipeline:
    def __init__(self, projector: Projector, on_written: OnWritten = _nothing):
        self.projector = projector
        self.on_written = on_written
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="projections-writer")
        self._inflight: tuple[asyncio.Future, Prepared, Message | None] | None = None

    async def submit(self, messages: list[Message]) -> Prepared:
        """Prepare `messages` now, write them in the background (after the batch before)."""
        prepared = self.projector.prepare(messages)
        covered = messages[prepared.handled - 1] if prepared.handled else None
        await self.flush()
        if prepared.position is None:
            if covered is not None:
                await self.on_written(covered)  # only redeliveries: acknowledge them
        else:
            future = asyncio.get_running_loop().run_in_executor(self._writer, self.projector.write, prepared)
            self._inflight = (future, prepared, covered)
        return prepared

    async def flush(self) -> None:
        """Wait for the batch in flight; on a failed write, start again from the file's position."""
        if self._inflight is None:
            return
        future, prepared, covered = self._inflight
        self._inflight = None
        try:
            await future
        except asyncio.CancelledError:
            raise  # stopping: the write goes on in its thread and close() waits for it
        except BaseException:
            self.projector.reset()
            raise
        self.projector.written(prepared)
        if covered is not None:
            await self.on_written(covered)

    @property
    def busy(self) -> bool:
        return self._inflight is not None

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            self._writer.shutdown(wait=True)
