"""`ringlog projections rebuild`: every read model from sequence 1 into a fresh file, then swapped in.

The fresh file is built beside the live one (`projections.rebuilt-<pid>.sqlite`), with
the projector's own apply code, up to the last sequence the stream had when the rebuild
started, then sealed. The swap is atomic (rename) and depends on who holds the data
folder's lock (`projections.lock`, held by a running projector):
- nobody: the command renames the file into place itself;
- a projector: the command asks it (`<prefix>.cmd.projections.swap`, with a token), and
  the projector pauses, closes its file, renames the rebuilt one in, re-positions its
  consumer after the rebuilt position and goes on: no restart needed;
- a projector that does not answer: the rebuilt file is left in place and the command
  says how to swap it by restarting.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nats.aio.client import Client

from projections.feed import PullFeed, connect_feed_client, ephemeral
from projections.pipeline import Pipeline
from projections.projector import Projector
from projections.store import FILE_NAME, DataLock, ProjectionStore, install
from schemas.subjects import STREAM_NAME, Subjects
from services.runtime import loop
from services.runtime.auth import issue_token

TAKE = 4000


@dataclass
class Rebuilt:
    events: int  # messages read from the log
    position: int  # last stream sequence in the file
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Progress:
    """A progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, out=sys.stderr, width: int = 30):
        self.total, self.out, self.width = max(total, 1), out, width
        self.started = self.drawn = time.monotonic()

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.drawn < 0.1:
            return
        self.drawn = now
        share = min(done / self.total, 1.0)
        filled = int(share * self.width)
        rate = done / max(now - self.started, 1e-9)
        self.out.write(f"\rrebuild [{'#' * filled}{'.' * (self.width - filled)}] {share:6.1%} "
                       f"{done:,}/{self.total:,} events {rate:,.0f}/s" + ("\n" if final else ""))
        self.out.flush()


async def rebuild_into(nc: Client, subjects: Subjects, path: Path, progress=None) -> Rebuilt:
    """Apply the whole log, from its first sequence to its last one now, to a fresh file at `path`."""
    js = nc.jetstream()
    state = (await js.stream_info(STREAM_NAME)).state
    path.unlink(missing_ok=True)
    store = ProjectionStore(path, building=True)
    projector = Projector(store)
    if state.messages:
        projector.skip_to(state.first_seq)
    target, read = state.last_seq, 0
    started = time.perf_counter()
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 50, 100)  # the folded views make no cycles: collect rarely
    feed = None
    pipeline = Pipeline(projector)
    try:
        while projector.position < target:
            if feed is None:
                name = f"ringlog-rebuild-{uuid.uuid4().hex[:12]}"
                await ephemeral(js, name, subjects.events_all, start_seq=projector.next_seq)
                feed = await PullFeed(nc, name, batch=TAKE).start()
            messages = await feed.take(TAKE, timeout=10.0)
            if not messages:
                raise RuntimeError(f"the log stopped delivering at sequence {projector.next_seq} of {target}")
            read += len(messages)
            prepared = await pipeline.submit([m for m in messages if m.seq <= target])
            if prepared.gap or feed.consumer_gone:
                await pipeline.flush()
                await feed.stop()
                feed = None  # a delivery was lost: read again from the position
            if progress:
                progress(projector.position - state.first_seq + 1 if state.messages else 0)
        await pipeline.flush()
    except BaseException:
        with contextlib.suppress(Exception):
            await pipeline.close()
        store.close()
        path.unlink(missing_ok=True)  # a failed rebuild leaves nothing behind
        raise
    finally:
        gc.set_threshold(*thresholds)
        await pipeline.close()
        if feed is not None:
            await feed.stop()
    position = projector.position
    store.seal()
    seconds = time.perf_counter() - started  # until the file is ready to swap in
    if progress:
        progress(position - state.first_seq + 1 if state.messages else 0, final=True)
    return Rebuilt(read, position, seconds)


async def swap(nc: Client, settings, fresh: Path, timeout: float = 10.0) -> str:
    """Put `fresh` in place of the live file; returns what happened, for the user."""
    live = settings.data_dir / FILE_NAME
    lock = DataLock(settings.data_dir)
    if lock.try_acquire():
        try:
            install(fresh, live)
        finally:
            lock.release()
        return f"swapped in {live} (no projector was running; the next one starts from it)"
    subject = Subjects(settings.prefix).command("projections", "swap")
    headers = {"Authorization": f"Bearer {issue_token(settings.secret(), 'ringlog-rebuild', ttl_seconds=300)}"}
    try:
        reply = await nc.request(subject, msgspec.json.encode({"file": fresh.name}), timeout=timeout, headers=headers)
    except Exception as error:  # noqa: BLE001 - any failure leaves the file for a manual swap
        reply, problem = None, f"no answer ({type(error).__name__})"
    if reply is not None:
        if not (reply.headers or {}).get("Nats-Service-Error-Code"):
            answer = msgspec.json.decode(reply.data)
            return f"the running projector swapped in the rebuilt file (position {answer['position']})"
        problem = reply.data.decode(errors="replace")
    raise RuntimeError(
        f"a projector holds {settings.data_dir} but did not swap: {problem}. The rebuilt file is {fresh}: "
        f"stop the projector, `mv {fresh} {live}` (and delete {live}-wal and {live}-shm), then start it again")


async def run_rebuild(settings, out=sys.stderr) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fresh = settings.data_dir / f"projections.rebuilt-{os.getpid()}.sqlite"
    nc = await connect_feed_client(settings.nats_url, "ringlog-rebuild")
    try:
        total = (await nc.jetstream().stream_info(STREAM_NAME)).state.messages
        rebuilt = await rebuild_into(nc, Subjects(settings.prefix), fresh, Progress(total, out))
        print(f"rebuilt {rebuilt.events:,} events up to sequence {rebuilt.position} in {rebuilt.seconds:.2f}s "
              f"({rebuilt.per_second:,.0f} events/s)", file=out)
        print(await swap(nc, settings, fresh), file=out)
        return 0
    except RuntimeError as error:
        print(f"ringlog projections rebuild: {error}", file=out)
        return 1
    finally:
        await nc.close()
        Path(f"{fresh}-journal").unlink(missing_ok=True)


def main(settings) -> int:
    return loop.run(run_rebuild(settings))
