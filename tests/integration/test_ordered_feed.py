"""The ordered push consumer (services.runtime.ordered) and follow_log on a real nats-server,
with the sink short path (SinkClient) and with nats-py's plain client."""

import asyncio
import logging
from datetime import datetime, timezone

import pytest
from nats.aio.client import Client

from schemas.enums import Source
from schemas.events import Error, encode_event
from schemas.subjects import STREAM_NAME, Subjects
from schemas.types import ZegoUIKitError
from services.runtime.bus import connect, ensure_stream
from services.runtime.ordered import OrderedConsumer
from services.runtime.sinks import SinkClient
from services.runtime.views import follow_log

SUBJECTS = Subjects()
ALL = SUBJECTS.event_filter()
INVITATION_ERRORS = SUBJECTS.event_filter(category="invitation", callback="onError")


def error_event(index: int, source: Source = Source.invitation) -> Error:
    return Error(eventID=f"e{index}", callID=f"call-{index % 7}", recipient="user1", seq=index,
                 occurredAt="2024-05-01T09:00:00.000Z", source=source, causationID="c",
                 error=ZegoUIKitError(code=1, message="no", method="m"))


@pytest.fixture(params=["sink", "plain"])
async def nc(request, nats_server):
    client = await connect(nats_server.url, "ordered-test", client=SinkClient() if request.param == "sink" else Client())
    await ensure_stream(client.jetstream(), SUBJECTS)
    yield client
    await client.close()


async def publish(nc, indexes, source: Source = Source.invitation) -> None:
    """Core publishes (fast), then wait until the stream holds them all."""
    js = nc.jetstream()
    wanted = (await js.stream_info(STREAM_NAME)).state.messages + len(indexes)
    for index in indexes:
        event = error_event(index, source)
        await nc.publish(SUBJECTS.event(event), encode_event(event))
    await nc.flush()
    while (await js.stream_info(STREAM_NAME)).state.messages < wanted:
        await asyncio.sleep(0.05)


async def until(condition, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"not so after {timeout} s"
        await asyncio.sleep(0.05)


class Following:
    """follow_log run as a task, with what it applied."""

    def __init__(self, nc, filter_subject: str = ALL, on_event=None, since=None):
        self.seen: list[str] = []
        self.caught_up = asyncio.Event()
        self.task = asyncio.create_task(follow_log(nc.jetstream(), filter_subject, on_event or self.note,
                                                   caught_up=self.caught_up, since=since))

    def note(self, event) -> None:
        self.seen.append(event.eventID)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class Collecting:
    """An OrderedConsumer (short heartbeats) collecting the indexes of its messages."""

    def __init__(self, nc, idle_heartbeat: float = 0.2):
        self.seen: list[int] = []
        self.consumer = OrderedConsumer(nc, nc.jetstream(), STREAM_NAME, ALL, self.note, idle_heartbeat=idle_heartbeat)

    def note(self, subject: bytes, data: bytes, pending: int) -> None:
        self.seen.append(int(data.split(b'"seq":')[1].split(b",")[0]))


def ids(indexes) -> list[str]:
    return [f"e{i}" for i in indexes]


async def test_every_event_in_order_then_new_ones(nc):
    await publish(nc, range(300))
    following = Following(nc)
    await asyncio.wait_for(following.caught_up.wait(), 10)
    assert following.seen == ids(range(300))  # caught up means the backlog is applied
    await publish(nc, range(300, 500))
    await until(lambda: len(following.seen) >= 500)
    assert following.seen == ids(range(500))
    await following.stop()


async def test_since_starts_at_that_time(nc):
    await publish(nc, range(50))
    await asyncio.sleep(0.3)
    since = datetime.now(timezone.utc)
    await asyncio.sleep(0.3)
    await publish(nc, range(50, 80))
    following = Following(nc, since=since)
    await asyncio.wait_for(following.caught_up.wait(), 10)
    assert following.seen == ids(range(50, 80))
    await following.stop()


async def test_caught_up_at_once_when_the_log_has_nothing_for_the_filter(nc):
    await publish(nc, range(20), source=Source.room)  # onError of calls (category "call"), not of invitations
    following = Following(nc, INVITATION_ERRORS)
    await asyncio.wait_for(following.caught_up.wait(), 5)
    assert following.seen == []
    await publish(nc, range(20, 23))
    await until(lambda: len(following.seen) == 3)
    assert following.seen == ids(range(20, 23))
    await following.stop()


async def test_coroutines_are_awaited_in_order_before_caught_up(nc):
    await publish(nc, range(200))
    applied: list[str] = []

    def on_event(event):
        if event.seq % 3:
            applied.append(event.eventID)
            return None

        async def slowly():
            await asyncio.sleep(0.001)
            applied.append(event.eventID)
        return slowly()

    following = Following(nc, on_event=on_event)
    await asyncio.wait_for(following.caught_up.wait(), 10)
    assert applied == ids(range(200))
    await publish(nc, range(200, 230))
    await until(lambda: len(applied) >= 230)
    assert applied == ids(range(230))
    await following.stop()


async def test_a_failing_event_is_logged_and_the_feed_goes_on(nc, caplog):
    await publish(nc, range(40))
    applied: list[int] = []

    def on_event(event):
        if event.seq % 10 == 9:
            raise ValueError("cannot apply")
        applied.append(event.seq)

    following = Following(nc, on_event=on_event)
    await asyncio.wait_for(following.caught_up.wait(), 10)  # the last event (39) failed: caught up all the same
    await publish(nc, range(40, 45))
    await until(lambda: len(applied) >= 41)
    assert applied == [i for i in range(45) if i % 10 != 9]
    assert sum("could not apply" in record.message for record in caplog.records) == 4
    await following.stop()


async def test_cancelling_removes_the_subscription_and_the_consumer(nc):
    await publish(nc, range(5))
    subscriptions = len(nc._subs)
    following = Following(nc)
    await asyncio.wait_for(following.caught_up.wait(), 10)
    js = nc.jetstream()
    assert (await js.stream_info(STREAM_NAME)).state.consumer_count == 1
    assert len(nc._subs) == subscriptions + 1
    await following.stop()
    assert len(nc._subs) == subscriptions
    assert not getattr(nc, "sinks", {})
    assert (await js.stream_info(STREAM_NAME)).state.consumer_count == 0


async def test_cancelled_while_starting_it_still_ends(nc):
    """The backlog can be applied before the consumer's creation is answered; a cancel then must not be lost."""
    await publish(nc, range(30))
    for _ in range(20):
        following = Following(nc)
        await asyncio.wait_for(following.caught_up.wait(), 10)
        following.task.cancel()
        await asyncio.wait_for(asyncio.gather(following.task, return_exceptions=True), 5)


async def test_a_big_backlog_goes_through_flow_control(nc):
    await publish(nc, range(20_000))
    collecting = Collecting(nc, idle_heartbeat=10.0)
    await collecting.consumer.start()
    # well before a heartbeat, which would tell of a stalled consumer and let it go on all the same
    await until(lambda: len(collecting.seen) >= 20_000, timeout=8)
    assert collecting.seen == list(range(20_000))
    await collecting.consumer.stop()


async def test_a_lost_flow_control_answer_is_given_again_on_the_stalled_heartbeat(nc):
    await publish(nc, range(20_000))
    collecting = Collecting(nc, idle_heartbeat=0.5)
    answer, answers = collecting.consumer._answer_flow_control, []

    def lose_the_first(reply: str) -> None:
        answers.append(reply)
        if len(answers) > 1:
            answer(reply)

    collecting.consumer._answer_flow_control = lose_the_first
    await collecting.consumer.start()
    await until(lambda: len(collecting.seen) >= 20_000, timeout=15)
    assert collecting.seen == list(range(20_000))
    await collecting.consumer.stop()


async def test_a_deleted_consumer_is_replaced_without_loss_or_duplicates(nc, replacements):
    await publish(nc, range(10))
    collecting = Collecting(nc)
    await collecting.consumer.start()
    await until(lambda: len(collecting.seen) == 10)
    await nc.jetstream().delete_consumer(STREAM_NAME, collecting.consumer.consumer_name)
    await publish(nc, range(10, 20))
    await until(lambda: len(collecting.seen) >= 20)
    await asyncio.sleep(0.5)
    assert collecting.seen == list(range(20))
    assert replacements("no heartbeat") == 1  # the server says nothing: three heartbeats missed
    await collecting.consumer.stop()


def losing(consumer: OrderedConsumer, stream_seqs: set[int]) -> None:
    """Make `consumer` lose the delivery of each of these stream sequences once, as if the server had."""
    on_frame = consumer._on_frame

    def lossy(subject, reply, data, headers):
        tokens = reply.split(b".")
        if len(tokens) >= 9 and not (headers and headers[8:9] == b" "):
            stream_seq = int(tokens[5 if len(tokens) == 9 else 7])
            if stream_seq in stream_seqs and stream_seq == consumer.delivered_stream_seq + 1:
                stream_seqs.discard(stream_seq)
                return True
        return on_frame(subject, reply, data, headers)

    consumer._on_frame = lossy


@pytest.fixture
def replacements(caplog):
    """How many times the consumer was replaced for a reason (from its log)."""
    caplog.set_level(logging.INFO, logger="services.runtime.ordered")

    def count(reason: str) -> int:
        return sum("resuming after" in record.message and reason in record.message for record in caplog.records)
    return count


async def test_a_lost_delivery_is_redelivered_in_order(nc, replacements):
    await publish(nc, range(30))
    collecting = Collecting(nc)
    losing(collecting.consumer, {5, 17})
    await collecting.consumer.start()
    await until(lambda: len(collecting.seen) >= 30)
    await asyncio.sleep(0.5)
    assert collecting.seen == list(range(30))
    assert replacements("consumer sequence") == 2
    await collecting.consumer.stop()


async def test_a_lost_last_delivery_is_noticed_by_the_heartbeat(nc, replacements):
    await publish(nc, range(10))
    collecting = Collecting(nc)
    losing(collecting.consumer, {10})
    await collecting.consumer.start()
    await until(lambda: len(collecting.seen) >= 10, timeout=5)
    assert collecting.seen == list(range(10))
    assert replacements("heartbeat names") == 1  # heartbeats keep coming: only they can tell
    await collecting.consumer.stop()


async def test_a_server_restart_is_survived(nats_server, replacements):
    nc = await connect(nats_server.url, "ordered-restart", client=SinkClient())
    await ensure_stream(nc.jetstream(), SUBJECTS)
    await publish(nc, range(10))
    collecting = Collecting(nc, idle_heartbeat=1.0)
    await collecting.consumer.start()
    await until(lambda: len(collecting.seen) == 10)
    nats_server.stop()  # the in-memory consumer goes with it; the stream is on disk
    await asyncio.sleep(0.5)
    nats_server.start()
    await until(lambda: nc.is_connected)
    await publish(nc, range(10, 20))
    await until(lambda: len(collecting.seen) >= 20)
    await asyncio.sleep(0.5)
    assert collecting.seen == list(range(20))
    assert replacements("reconnected") == 1 and replacements("no heartbeat") == 0  # not three heartbeats later
    await collecting.consumer.stop()
    await nc.close()
