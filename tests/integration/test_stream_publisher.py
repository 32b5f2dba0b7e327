"""StreamPublisher on a real nats-server: with the sink short path and with nats-py's plain client."""

import asyncio

import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig

from services.runtime.bus import connect
from services.runtime.publisher import PublishRefused, StreamPublisher
from services.runtime.sinks import SinkClient
from services.runtime.wire import header_block

STREAM = "PUBTEST"


@pytest.fixture(params=["sink", "plain"])
async def nc(request, nats_server):
    client = await connect(nats_server.url, "publisher-test", client=SinkClient() if request.param == "sink" else Client())
    await client.jetstream().add_stream(StreamConfig(name=STREAM, subjects=["pub.>"], duplicate_window=120))
    yield client
    await client.close()


def batch(ids, stream=STREAM):
    return [(f"pub.{i % 3}", f"payload {i}".encode(), {"Nats-Msg-Id": f"m{i}", "Nats-Expected-Stream": stream})
            for i in ids]


async def stored(nc) -> int:
    return (await nc.jetstream().stream_info(STREAM)).state.messages


async def test_every_message_is_stored_and_acknowledged(nc):
    publisher = await StreamPublisher(nc).start()
    await publisher.publish(batch(range(500)), timeout=5)
    await publisher.publish(batch(range(500, 520)), timeout=5)
    assert await stored(nc) == 520
    messages = await nc.jetstream().get_msg(STREAM, 520)
    assert messages.data == b"payload 519"


async def test_ready_made_header_blocks_are_sent_as_given(nc):
    publisher = await StreamPublisher(nc).start()
    ready = [(subject, payload, header_block(headers)) for subject, payload, headers in batch(range(3))]
    await publisher.publish(ready + batch(range(3)), timeout=5)  # the same ids as dicts: duplicates
    assert await stored(nc) == 3
    assert (await nc.jetstream().get_msg(STREAM, 3)).headers["Nats-Msg-Id"] == "m2"


async def test_a_republished_batch_is_acknowledged_and_stored_once(nc):
    publisher = await StreamPublisher(nc).start()
    await publisher.publish(batch(range(10)), timeout=5)
    await publisher.publish(batch(range(5, 15)), timeout=5)  # 5 duplicates, 5 new
    assert await stored(nc) == 15


async def test_a_refused_message_fails_the_batch(nc):
    publisher = await StreamPublisher(nc).start()
    with pytest.raises(PublishRefused, match="expected stream"):
        await publisher.publish(batch(range(3)) + batch([3], stream="ANOTHER"), timeout=5)
    await publisher.publish(batch(range(4)), timeout=5)  # the same publisher goes on
    assert await stored(nc) == 4


async def test_no_stream_for_the_subject_fails_the_batch(nc):
    publisher = await StreamPublisher(nc).start()
    with pytest.raises(PublishRefused, match="status 503|not acknowledged"):
        await publisher.publish([("nowhere.x", b"x", {"Nats-Msg-Id": "n1"})], timeout=2)


async def test_silence_fails_after_the_timeout_and_late_acks_are_ignored(nc):
    publisher = await StreamPublisher(nc).start()
    replies = []

    async def never_answer(msg):
        replies.append(msg.reply)

    async def answer_late(msg):
        # while this batch waits, the abandoned batch's ack arrives, as a refusal: it must not count
        await nc.publish(replies[0], b'{"error":{"code":503,"err_code":1,"description":"late"}}')
        await asyncio.sleep(0.1)
        await nc.publish(msg.reply, b'{"stream":"PUBTEST","seq":1}')

    await nc.subscribe("silent.x", cb=never_answer)
    await nc.subscribe("slow.x", cb=answer_late)
    started = asyncio.get_running_loop().time()
    with pytest.raises(PublishRefused, match="1 of 1 messages not acknowledged"):
        await publisher.publish([("silent.x", b"x", {"Nats-Msg-Id": "s1"})], timeout=0.3)
    assert asyncio.get_running_loop().time() - started < 1.0
    await publisher.publish([("slow.x", b"x", {"Nats-Msg-Id": "s2"})], timeout=5)
    await publisher.publish(batch(range(2)), timeout=5)
    assert await stored(nc) == 2


async def test_concurrent_batches_are_each_acknowledged(nc):
    publisher = await StreamPublisher(nc).start()
    await asyncio.gather(*(publisher.publish(batch(range(start, start + 50)), timeout=5) for start in range(0, 300, 50)))
    assert await stored(nc) == 300


async def test_batches_sent_now_fly_together_and_are_stored_in_order(nc):
    publisher = await StreamPublisher(nc).start()
    sent = [publisher.send_now(batch(range(start, start + 40))) for start in range(0, 200, 40)]
    if not isinstance(nc, SinkClient):
        assert sent == [None] * 5  # nats-py's own client has no way to queue frames without awaiting
        return
    assert all(one is not None for one in sent)
    for one in sent:
        await publisher.wait(one, timeout=5)
    assert await stored(nc) == 200
    assert (await nc.jetstream().get_msg(STREAM, 200)).data == b"payload 199"
    assert publisher._in_flight == {}


async def test_a_batch_sent_now_and_refused_fails_only_its_wait(nc):
    publisher = await StreamPublisher(nc).start()
    refused = publisher.send_now(batch([0], stream="ANOTHER"))
    if refused is None:
        return
    fine = publisher.send_now(batch([1]))
    with pytest.raises(PublishRefused, match="expected stream"):
        await publisher.wait(refused, timeout=5)
    await publisher.wait(fine, timeout=5)
    assert await stored(nc) == 1


async def test_a_publisher_not_started_cannot_send_now(nc):
    assert StreamPublisher(nc).send_now(batch([0])) is None
