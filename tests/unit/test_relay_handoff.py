"""The relay publishes a group commit's rows from memory exactly as it would from the store."""

import asyncio

import pytest

from schemas.subjects import Subjects
from services.runtime.publisher import PublishRefused
from services.runtime.relay import Relay
from services.runtime.relay_position import RelayPosition
from services.runtime.store import CommandRecord, EventStore
from tests.unit.test_event_store import accepted, sent


class RecordingPublisher:
    def __init__(self):
        self.batches: list[list[tuple]] = []
        self.refuse_next = False

    async def start(self):
        return self

    async def publish(self, messages, timeout):
        if self.refuse_next:
            self.refuse_next = False
            raise PublishRefused("refused")
        self.batches.append(list(messages))


class CountingStore:
    def __init__(self, store):
        self.inner, self.reads = store, 0

    def notifications(self, after, limit):
        self.reads += 1
        return self.inner.notifications(after, limit)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def store(tmp_path):
    store = EventStore("invitation", str(tmp_path / "invitation.sqlite"))
    yield store
    store.close()


def make_relay(store, tmp_path, name, **options):
    publisher = RecordingPublisher()
    counting = CountingStore(store)
    relay = Relay(counting, None, Subjects(), RelayPosition(str(tmp_path / "invitation.sqlite"), name),
                  publisher=publisher, **options)
    return relay, publisher, counting


def commit(store, call_id, *relays):
    """One group commit: an invitation, its acceptance and the command record."""
    group = [([(call_id, [sent(call_id, "2026-01-01T00:00:00.000Z"), accepted(call_id, "2026-01-01T00:00:01.000Z", 2)])],
              CommandRecord(commandID=f"k-{call_id}", verb="send"))]
    rows = store.write_group(store.prepare_group(group))
    for relay in relays:
        relay.take(rows)
    return rows


async def publish_all(relay):
    while await relay.publish_pending():
        pass


async def test_handed_rows_publish_what_the_store_would_without_reading_it(store, tmp_path):
    handed, handed_out, handed_store = make_relay(store, tmp_path, "handed", batch_size=4)
    reading, reading_out, _ = make_relay(store, tmp_path, "reading", batch_size=4)
    assert await handed.publish_pending() is False and handed_store.reads == 1  # caught up with the store
    for index in range(5):
        commit(store, f"c{index}", handed)
    await publish_all(handed)
    await publish_all(reading)
    assert handed_out.batches == reading_out.batches
    assert [len(batch) for batch in handed_out.batches] == [3, 3, 2, 2]  # 4 rows a batch, every third a record
    subject, payload, _ = handed_out.batches[0][0]
    assert subject == "ringlog.evt.invitation.onOutgoingCallSent.c0.ann"
    assert payload == store.notifications(0, 1)[0].state
    assert handed_store.reads == 1  # not once more: every row since came handed over
    assert handed.published_position == reading.published_position == store.max_position() == 15


async def test_a_gap_in_the_hand_off_is_read_from_the_store(store, tmp_path):
    relay, out, counting = make_relay(store, tmp_path, "gap")
    commit(store, "c0")  # committed but never handed over (as after a restart)
    commit(store, "c1", relay)
    await publish_all(relay)
    published = [payload for batch in out.batches for _, payload, _ in batch]
    assert published == [row.state for row in store.notifications(0, 100) if row.topic != "ringlog:CommandRecord"]
    assert counting.reads >= 1 and relay.published_position == 6


async def test_a_refused_batch_is_published_again(store, tmp_path):
    relay, out, counting = make_relay(store, tmp_path, "refused")
    assert await relay.publish_pending() is False
    commit(store, "c0", relay)
    out.refuse_next = True
    with pytest.raises(PublishRefused):
        await relay.publish_pending()
    assert relay.published_position == 0
    await publish_all(relay)
    assert [len(batch) for batch in out.batches] == [2] and counting.reads == 1
    assert relay.published_position == 3


async def test_a_batch_of_command_records_only_moves_the_position(store, tmp_path):
    relay, out, _ = make_relay(store, tmp_path, "records")
    rows = store.write_group(store.prepare_group([([], CommandRecord(commandID="k", verb="send", status=404))]))
    relay.take(rows)
    assert await relay.publish_pending() is True
    assert out.batches == [[]] and relay.published_position == 1
    assert await relay.publish_pending() is False


async def test_a_relay_far_behind_drops_the_hand_off_and_reads_the_store(store, tmp_path):
    relay, out, counting = make_relay(store, tmp_path, "behind")
    relay.HANDED_LIMIT = 4
    commit(store, "c0", relay)
    commit(store, "c1", relay)  # 6 rows: more than the relay keeps
    assert len(relay._handed) == 0
    commit(store, "c2", relay)
    await publish_all(relay)
    assert sum(len(batch) for batch in out.batches) == 6 and counting.reads >= 1
    assert relay.published_position == 9


class PipelinedPublisher(RecordingPublisher):
    """send_now/wait as StreamPublisher has them; the test decides when a batch is acknowledged."""

    def __init__(self, can_send_now=True):
        super().__init__()
        self.can_send_now = can_send_now
        self.sent: list[tuple[list, asyncio.Future]] = []
        self.abandoned = 0

    def send_now(self, messages):
        if not self.can_send_now:
            return None
        done = asyncio.get_running_loop().create_future()
        self.sent.append((list(messages), done))
        return done

    async def wait(self, batch, timeout):
        await asyncio.wait_for(asyncio.shield(batch), timeout)

    def abandon(self, batch):
        self.abandoned += 1


async def live_relay(store, tmp_path, publisher, **options):
    counting = CountingStore(store)
    relay = Relay(counting, None, Subjects(), RelayPosition(str(tmp_path / "invitation.sqlite"), "live"),
                  publisher=publisher, idle_poll=0.05, **options)
    task = asyncio.create_task(relay.run())
    for _ in range(100):  # caught up with the (empty) store: live
        await asyncio.sleep(0.01)
        if relay._live:
            return relay, task, counting
    raise AssertionError("the relay did not go live")


async def stop(task):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_live_rows_are_sent_within_take_and_several_batches_fly_at_once(store, tmp_path):
    publisher = PipelinedPublisher()
    relay, task, counting = await live_relay(store, tmp_path, publisher)
    try:
        commit(store, "c0", relay)
        assert len(publisher.sent) == 1  # queued inside take: before any reply could be
        commit(store, "c1", relay)
        assert len(publisher.sent) == 2 and relay.published_position == 0  # two in flight, none acked
        assert [subject for subject, _, _ in publisher.sent[1][0]] == [
            "ringlog.evt.invitation.onOutgoingCallSent.c1.ann", "ringlog.evt.invitation.onOutgoingCallAccepted.c1.ann"]
        publisher.sent[1][1].set_result(None)  # acks may come in any order: the position follows the log
        await asyncio.sleep(0.05)
        assert relay.published_position == 0
        publisher.sent[0][1].set_result(None)
        for _ in range(50):
            await asyncio.sleep(0.01)
            if relay.published_position == 6:
                break
        assert relay.published_position == 6 and RelayPosition(str(tmp_path / "invitation.sqlite"), "live").get() == 6
        assert counting.reads == 1 and publisher.batches == []  # the start-up read; nothing through `publish`
    finally:
        await stop(task)


async def test_a_refused_batch_in_flight_is_published_again_with_those_after_it(store, tmp_path):
    publisher = PipelinedPublisher()
    relay, task, counting = await live_relay(store, tmp_path, publisher)
    try:
        commit(store, "c0", relay)
        commit(store, "c1", relay)
        publisher.sent[0][1].set_exception(PublishRefused("refused"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if relay.published_position == 6:
                break
        assert relay.published_position == 6
        assert publisher.abandoned == 2  # both batches in flight were given up...
        published = [payload for batch in publisher.batches for _, payload, _ in batch]
        assert published == [row.state for row in store.notifications(0, 10) if row.topic != "ringlog:CommandRecord"]
        assert counting.reads == 1  # ...and both went again, in order, from the rows still in memory
    finally:
        await stop(task)


async def test_a_connection_that_cannot_send_now_leaves_the_run_loop_to_publish(store, tmp_path):
    publisher = PipelinedPublisher(can_send_now=False)
    relay, task, _ = await live_relay(store, tmp_path, publisher)
    try:
        commit(store, "c0", relay)
        assert publisher.sent == [] and not relay._live
        for _ in range(100):
            await asyncio.sleep(0.01)
            if relay.published_position == 3:
                break
        assert relay.published_position == 3 and len(publisher.batches) == 1
    finally:
        await stop(task)
