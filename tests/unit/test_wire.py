"""FrameParser against nats-py's own parser: the same frames, however the reads split them."""

import asyncio
import random

import pytest
from nats.errors import BadHeaderError, ProtocolError
from nats.protocol.parser import Parser

from services.runtime.wire import FrameParser, header_block, hpub, parse_headers


class RecordingClient:
    """What a parser calls on its client, written down in order."""

    def __init__(self, sink_sids=(), decline_sids=()):
        self.calls = []
        self.stats = {"in_msgs": 0, "in_bytes": 0}
        self.sinks = {sid: self._sink(sid, True) for sid in sink_sids}
        self.sinks.update({sid: self._sink(sid, False) for sid in decline_sids})

    def _sink(self, sid, takes):
        def sink(subject, reply, data, headers):
            if takes:
                self.calls.append(("msg", sid, subject, reply, data, headers))
            return takes
        return sink

    async def _process_msg(self, sid, subject, reply, data, headers):
        self.calls.append(("msg", sid, subject, reply, data, headers))

    async def _process_ping(self):
        self.calls.append(("ping",))

    async def _process_pong(self):
        self.calls.append(("pong",))

    async def _process_info(self, info):
        self.calls.append(("info", info))

    async def _process_err(self, message):
        self.calls.append(("err", message))


def random_frames(rng: random.Random, count: int) -> bytes:
    frames = []
    for _ in range(count):
        kind = rng.choice(["msg", "msg_reply", "hmsg", "hmsg_reply", "ping", "pong", "ok", "info"])
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 300, 5000])))
        sid = rng.randint(1, 4)
        subject = f"ringlog.evt.room.onStateChanged.c{rng.randint(0, 99)}".encode()
        reply = f"$JS.ACK.S.C.1.{rng.randint(1, 10**6)}.{rng.randint(1, 10**6)}.17.0".encode()
        headers = b"NATS/1.0\r\nNats-Msg-Id: " + str(rng.random()).encode() + b"\r\n\r\n"
        if kind == "msg":
            frames.append(b"MSG %b %d %d\r\n%b\r\n" % (subject, sid, len(payload), payload))
        elif kind == "msg_reply":
            frames.append(b"MSG %b %d %b %d\r\n%b\r\n" % (subject, sid, reply, len(payload), payload))
        elif kind == "hmsg":
            frames.append(b"HMSG %b %d %d %d\r\n%b%b\r\n" % (
                subject, sid, len(headers), len(headers) + len(payload), headers, payload))
        elif kind == "hmsg_reply":
            frames.append(b"HMSG %b %d %b %d %d\r\n%b%b\r\n" % (
                subject, sid, reply, len(headers), len(headers) + len(payload), headers, payload))
        elif kind == "ping":
            frames.append(b"PING\r\n")
        elif kind == "pong":
            frames.append(b"PONG\r\n")
        elif kind == "ok":
            frames.append(b"+OK\r\n")
        else:
            frames.append(b'INFO {"server_id":"x","max_payload":1048576}\r\n')
    return b"".join(frames)


def split_randomly(rng: random.Random, data: bytes) -> list[bytes]:
    chunks, position = [], 0
    while position < len(data):
        size = rng.choice([1, 2, 7, 64, 1000, 32768])
        chunks.append(data[position:position + size])
        position += size
    return chunks


async def feed(parser, chunks) -> None:
    for chunk in chunks:
        await parser.parse(chunk)


@pytest.mark.parametrize("seed", range(20))
def test_same_calls_as_nats_py_however_the_reads_split_the_frames(seed):
    rng = random.Random(seed)
    data = random_frames(rng, 200)
    expected = RecordingClient()
    asyncio.run(feed(Parser(expected), [data]))
    ours = RecordingClient(sink_sids=[1, 2], decline_sids=[3])  # 4: no sink at all
    asyncio.run(feed(FrameParser(ours), split_randomly(rng, data)))
    assert ours.calls == expected.calls
    taken = [call for call in expected.calls if call[0] == "msg" and call[1] in (1, 2)]
    assert ours.stats["in_msgs"] == len(taken)
    assert ours.stats["in_bytes"] == sum(len(call[4]) for call in taken)


def test_a_frame_split_at_every_byte_comes_out_once():
    data = hpub(b"a.b", b"_INBOX.x.1", header_block({"Nats-Msg-Id": "e1"}), b"{}").replace(b"HPUB", b"HMSG", 1)
    data = data.replace(b"a.b _INBOX", b"a.b 1 _INBOX")
    for cut in range(1, len(data)):
        client = RecordingClient(sink_sids=[1])
        asyncio.run(feed(FrameParser(client), [data[:cut], data[cut:]]))
        assert client.calls == [("msg", 1, b"a.b", b"_INBOX.x.1", b"{}", b"NATS/1.0\r\nNats-Msg-Id: e1\r\n\r\n")]


def test_unknown_and_malformed_lines_are_protocol_errors():
    for line in (b"BOGUS 1 2\r\n", b"MSG a\r\n", b"HMSG a 1 2\r\n"):
        with pytest.raises(ProtocolError):
            asyncio.run(feed(FrameParser(RecordingClient()), [line]))


def test_reset_forgets_a_partial_frame():
    client = RecordingClient(sink_sids=[1])
    parser = FrameParser(client)
    asyncio.run(feed(parser, [b"MSG a 1 10\r\n01234"]))
    parser.reset()
    asyncio.run(feed(parser, [b"MSG b 1 2\r\nok\r\n"]))
    assert client.calls == [("msg", 1, b"b", b"", b"ok", None)]


def test_hpub_frames_what_nats_py_would_send():
    headers = header_block({"Nats-Msg-Id": "e-1", "Nats-Expected-Stream": "RINGLOG_EVENTS"})
    assert headers == b"NATS/1.0\r\nNats-Msg-Id: e-1\r\nNats-Expected-Stream: RINGLOG_EVENTS\r\n\r\n"
    frame = hpub(b"s.t", b"r.1", headers, b"payload")
    assert frame == b"HPUB s.t r.1 %d %d\r\n%bpayload\r\n" % (len(headers), len(headers) + 7, headers)


def test_header_block_follows_nats_py_rules():
    assert header_block({" Name ": " v ", "": "skipped", "Multi": "a\r\nb"}) == b"NATS/1.0\r\nName: v\r\nMulti: a  b\r\n\r\n"
    for name in ("a:b", "a b", "é"):
        with pytest.raises(BadHeaderError):
            header_block({name: "v"})


def test_hpub_without_a_reply_has_no_empty_field():
    assert hpub(b"s", b"", b"NATS/1.0\r\n\r\n", b"x") == b"HPUB s 12 13\r\nNATS/1.0\r\n\r\nx\r\n"


def test_headers_parsed_as_nats_py_parses_them():
    raw = header_block({"Authorization": "Bearer a.b.c", "Content-Type": "application/json"})
    assert parse_headers(raw) == {"Authorization": "Bearer a.b.c", "Content-Type": "application/json"}
    assert parse_headers(None) is None
    assert parse_headers(b"NATS/1.0 503\r\n\r\n") is None  # a status message is not a request's headers
