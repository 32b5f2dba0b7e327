"""The preload's publisher: a child process that publishes the history's events in order.

It reads length-prefixed msgpack batches of (subject, payload, eventID) on stdin and
publishes them with pipelined `publish_async` and `Nats-Msg-Id`, bounded; at end of input
it waits for every ack and prints a JSON result. The pipe's small buffer is the
back-pressure: one batch is being published while the next is generated.
"""

from __future__ import annotations

import asyncio
import gc
import json
import struct
import subprocess
import sys
from collections import deque

import msgspec

from schemas.subjects import STREAM_NAME

_encode_batch = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(list[tuple[str, bytes, str]]).decode
_LENGTH = struct.Struct(">I")


async def _publish_from(stream, url: str, window: int) -> int:
    """Publish in bursts of window/2 messages, at most two bursts unacknowledged: the
    client writes big buffers instead of one message per returning ack."""
    import nats

    nc = await nats.connect(url, name="ringlog-bench-preload")
    js = nc.jetstream(publish_async_max_pending=window * 2)
    loop = asyncio.get_running_loop()
    burst = max(1, window // 2)
    in_flight: deque[list] = deque()
    current: list = []
    published = 0

    async def settle(futures: list) -> None:
        # publish_async futures never resolve when the server rejects a message: bound them
        for ack in await asyncio.wait_for(asyncio.gather(*futures), 60):
            if ack.stream != STREAM_NAME:
                raise RuntimeError(f"published into {ack.stream}, not {STREAM_NAME}")

    def read_batch() -> bytes:
        head = stream.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return b""
        return stream.read(_LENGTH.unpack(head)[0])

    try:
        while data := await loop.run_in_executor(None, read_batch):
            for subject, payload, event_id in _decode_batch(data):
                current.append(await js.publish_async(subject, payload, stream=STREAM_NAME,
                                                      headers={"Nats-Msg-Id": event_id}))
                published += 1
                if len(current) >= burst:
                    in_flight.append(current)
                    current = []
                    if len(in_flight) >= 2:
                        await settle(in_flight.popleft())
        in_flight.append(current)
        while in_flight:
            await settle(in_flight.popleft())
        return published
    finally:
        await nc.close()


def publisher_main(url: str, window: int) -> int:
    gc.disable()  # millions of short-lived futures: the cyclic collector only costs time here
    published = asyncio.run(_publish_from(sys.stdin.buffer, url, window))
    print(json.dumps({"published": published}), flush=True)
    return 0


class Publisher:
    """`python -m ringlog.bench.preload_publisher URL` as a child process, fed batches in order."""

    def __init__(self, url: str, window: int = 4000):
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ringlog.bench.preload_publisher", url, str(window)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def send(self, batch: list[tuple[str, bytes, str]]) -> None:
        data = _encode_batch(batch)
        try:
            self._process.stdin.write(_LENGTH.pack(len(data)) + data)
        except BrokenPipeError:
            self.finish()  # raises with the child's error
            raise

    def finish(self, timeout: float = 600.0) -> int:
        try:
            out, err = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError("the preload publisher did not finish") from None
        if self._process.returncode != 0:
            raise RuntimeError(f"the preload publisher failed: {err.decode(errors='replace').strip()[-2000:]}")
        return json.loads(out.decode().strip().splitlines()[-1])["published"]

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    sys.exit(publisher_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4000))
