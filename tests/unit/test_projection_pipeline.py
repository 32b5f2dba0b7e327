"""The apply pipeline over a real SQLite file: the loop prepares while the writer writes, in log order."""

import asyncio
import threading

import pytest

from projections.pipeline import Pipeline
from projections.projector import Projector
from projections.store import ProjectionStore
from projections.synthetic import mixed_calls
from tests.unit.test_projection_projector import as_messages


class GatedProjector(Projector):
    """Writes wait at a gate (a test opens it) and are recorded in the order they ran."""

    def __init__(self, store, limit: int | None = None):
        super().__init__(store)
        self.gate = threading.Event()
        self.writes: list[int] = []  # last sequence of every batch written
        self.fail_at: int | None = None
        self._limit = limit

    @property
    def unwritten_limit(self) -> int:
        return self._limit if self._limit is not None else super().unwritten_limit

    def write(self, prepared) -> None:
        if not self.gate.wait(timeout=10):
            raise TimeoutError("the test never opened the gate")
        if prepared.position is not None and prepared.position[0] == self.fail_at:
            raise OSError("disk full")
        super().write(prepared)
        self.writes.append(prepared.position[0])


@pytest.fixture(scope="module")
def log():
    return as_messages(mixed_calls(60, seed=5, users=10))


def reference(path, messages):
    store = ProjectionStore(path)
    Projector(store).apply(messages)
    return store.dump()


async def test_batches_prepared_during_a_write_wait_for_nothing_and_are_written_in_order(tmp_path, log):
    store = ProjectionStore(tmp_path / "p.sqlite")
    projector = GatedProjector(store)
    acked = []

    async def acknowledge(message) -> None:
        acked.append(message.seq)

    pipeline = Pipeline(projector, on_written=acknowledge)
    batches = [log[start:start + 100] for start in range(0, len(log), 100)]
    for batch in batches:  # the first write is held at the gate: every submit returns anyway
        await asyncio.wait_for(pipeline.submit(batch), timeout=1)
    assert projector.writes == [] and pipeline.unwritten == len(log) and acked == []
    projector.gate.set()
    await pipeline.close()
    assert projector.writes == [batch[-1].seq for batch in batches]  # one transaction a batch, in log order
    assert acked[-1] == log[-1].seq and acked == sorted(acked)  # acknowledged after the commits only
    assert store.dump() == reference(tmp_path / "ref.sqlite", log)
    assert store.position()[0] == log[-1].seq


async def test_submit_waits_for_the_writer_beyond_the_unwritten_limit(tmp_path, log):
    projector = GatedProjector(ProjectionStore(tmp_path / "p.sqlite"), limit=250)
    pipeline = Pipeline(projector)
    await asyncio.wait_for(pipeline.submit(log[:100]), timeout=1)  # handed to the writer, held at the gate
    await asyncio.wait_for(pipeline.submit(log[100:200]), timeout=1)  # 200 unwritten: within the limit
    third = asyncio.ensure_future(pipeline.submit(log[200:300]))  # 300: beyond it, so this one waits
    await asyncio.sleep(0.05)
    assert not third.done()
    projector.gate.set()
    await asyncio.wait_for(third, timeout=5)
    await pipeline.close()
    assert projector.writes[-1] == log[299].seq


async def test_a_failed_write_drops_what_was_queued_and_starts_again_from_the_file(tmp_path, log):
    store = ProjectionStore(tmp_path / "p.sqlite")
    projector = GatedProjector(store)
    projector.fail_at = log[199].seq
    pipeline = Pipeline(projector)
    await pipeline.submit(log[:100])
    await pipeline.submit(log[100:200])
    await pipeline.submit(log[200:300])
    projector.gate.set()
    with pytest.raises(OSError, match="disk full"):
        await pipeline.flush()
    assert not pipeline.busy and projector.position == store.position()[0] == log[99].seq
    projector.fail_at = None
    await pipeline.submit(log[100:])  # the caller re-reads from next_seq
    await pipeline.close()
    assert store.dump() == reference(tmp_path / "ref.sqlite", log)
