"""The apply loop: batches are prepared on the event loop while earlier ones are written.

Decoding and folding need the GIL; SQLite's inserts and commit do not. So every batch
is prepared (decoded, folded, turned into rows) on the event loop as it arrives, and
one writer thread writes prepared batches, each in its own transaction, in log order.
Neither side waits for the other while there is work: whenever the writer is free it
takes every batch prepared meanwhile, and the loop goes on preparing while it writes.

Events prepared and not yet written are bounded (`Projector.unwritten_limit`): beyond
the bound `submit` waits for the writer, so every view an unwritten batch changed stays
in the projector's cache and none is read back from the file before its last change is
committed. A batch is acknowledged (`on_written`) only after its commit. (Handing the
writer one batch at a time, and waiting for it before the next, made both sides wait
by turns: a long write left only the messages read after it for the next batch, and
the batch sizes see-sawed: docs/performance.md, step 33.)
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable

from projections.projector import Message, Prepared, Projector

OnWritten = Callable[[Message], Awaitable[None]]
Handed = list[tuple[Prepared, Message | None]]  # batches and the last message each one covers


async def _nothing(message: Message) -> None:
    return None


class Pipeline:
    def __init__(self, projector: Projector, on_written: OnWritten = _nothing):
        self.projector = projector
        self.on_written = on_written
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="projections-writer")
        self._queued: Handed = []  # prepared, waiting for the writer
        self._inflight: tuple[asyncio.Future, Handed] | None = None

    async def submit(self, messages: list[Message]) -> Prepared:
        """Prepare `messages` now; they are written after every batch submitted before them."""
        prepared = self.projector.prepare(messages)
        covered = messages[prepared.handled - 1] if prepared.handled else None
        self._queued.append((prepared, covered))
        if self._inflight is None or self._inflight[0].done() or self.unwritten > self.projector.unwritten_limit:
            await self._collect()
            self._hand_over()
        return prepared

    @property
    def unwritten(self) -> int:
        """Events prepared and not yet committed."""
        handed = self._inflight[1] if self._inflight else []
        return sum(prepared.applied for prepared, _ in (*handed, *self._queued))

    @property
    def busy(self) -> bool:
        return self._inflight is not None or bool(self._queued)

    async def flush(self) -> None:
        """Wait until everything submitted is written; on a failed write, start again from the file's position."""
        while self.busy:
            await self._collect()
            self._hand_over()

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            self._writer.shutdown(wait=True)

    def _hand_over(self) -> None:
        if self._queued and self._inflight is None:
            handed, self._queued = self._queued, []
            future = asyncio.get_running_loop().run_in_executor(self._writer, self._write, handed)
            self._inflight = (future, handed)

    def _write(self, handed: Handed) -> None:  # on the writer thread
        for prepared, _ in handed:
            self.projector.write(prepared)

    async def _collect(self) -> None:
        """Wait for the writer's batches and note them written."""
        if self._inflight is None:
            return
        future, handed = self._inflight
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            raise  # stopping: the write goes on in its thread and close() waits for it
        except BaseException:
            self._inflight, self._queued = None, []
            self.projector.reset()
            raise
        self._inflight = None
        for prepared, _ in handed:
            self.projector.written(prepared)
        covered = [message for _, message in handed if message is not None]
        if covered:
            await self.on_written(covered[-1])
