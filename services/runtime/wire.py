"""The NATS wire protocol on a process's hot path: frames in, frames out.

nats-py's parser matches each message's control line with two regular expressions,
copies the payload out of a bytearray it shifts after every message, and awaits the
client's `_process_msg` coroutine for each one: at ~2,000 messages a second per process
that was 5-17% of each process's CPU. `FrameParser` splits the lines of each read in
place, hands message frames to the client's sinks synchronously, and gives every other
message (and every other protocol line) to nats-py's own code.

`hpub` builds a publish frame in one step, with header bytes prepared by the caller
(nats-py rebuilds and re-checks the header block of every message it publishes).
"""

from __future__ import annotations

import re

from nats.aio.client import Client
from nats.errors import BadHeaderError, ProtocolError
from nats.protocol.parser import AWAITING_CONTROL_LINE, Parser

_CRLF = b"\r\n"
# nats-py's own rules for the headers it sends (nats.aio.client)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NEWLINES_TO_SPACES = str.maketrans({"\r": " ", "\n": " "})


def header_block(headers: dict[str, str]) -> bytes:
    """The header block nats-py's `publish` would send for `headers` (same checks)."""
    lines = [b"NATS/1.0"]
    for name, value in headers.items():
        if name not in _CHECKED_NAMES:
            name = name.strip()
            if not name:
                continue
            if not _HEADER_NAME.fullmatch(name):
                raise BadHeaderError(name)
            if len(_CHECKED_NAMES) < 1024:
                _CHECKED_NAMES.add(name)
        lines.append(f"{name}: {value.strip().translate(_NEWLINES_TO_SPACES)}".encode())
    return _CRLF.join(lines) + _CRLF + _CRLF


_CHECKED_NAMES: set[str] = set()  # names already stripped and checked (the same few come back)


def hpub(subject: bytes, reply: bytes, headers: bytes, payload: bytes) -> bytes:
    """One HPUB frame (subject and reply, if any, must be valid NATS subjects)."""
    size = len(headers)
    if not reply:
        return b"HPUB %b %d %d\r\n%b%b\r\n" % (subject, size, size + len(payload), headers, payload)
    return b"HPUB %b %b %d %d\r\n%b%b\r\n" % (subject, reply, size, size + len(payload), headers, payload)


_HEADER_LINE = b"NATS/1.0\r\n"


def parse_headers(raw: bytes | None) -> dict[str, str] | None:
    """A message's headers as nats-py gives them; None when absent or a status message."""
    if not raw or not raw.startswith(_HEADER_LINE):
        return None
    return Client._parse_header_lines(raw[len(_HEADER_LINE):])


class FrameParser(Parser):
    """nats-py's parser interface; MSG/HMSG frames go to `nc.sinks` where one takes them."""

    def reset(self) -> None:
        super().reset()
        self._partial = bytearray()
        self._needed = 0  # bytes the partial frame needs before it can be parsed again

    async def parse(self, data: bytes = b"") -> None:
        if self._partial:
            self._partial += data
            if len(self._partial) < self._needed:
                return
            data = bytes(self._partial)
            self._partial = bytearray()
        nc = self.nc
        sinks = nc.sinks
        end_of_data = len(data)
        position = 0
        while position < end_of_data:
            line_end = data.find(_CRLF, position)
            if line_end < 0:
                self._keep(data, position, end_of_data - position + 1)
                return
            if data.startswith(b"MSG ", position):
                fields = data[position + 4:line_end].split()
                header_size = 0
                if len(fields) == 3:
                    subject, sid, total = fields
                    reply = b""
                elif len(fields) == 4:
                    subject, sid, reply, total = fields
                else:
                    raise ProtocolError("nats: malformed MSG")
            elif data.startswith(b"HMSG ", position):
                fields = data[position + 5:line_end].split()
                if len(fields) == 4:
                    subject, sid, header_size, total = fields
                    reply = b""
                elif len(fields) == 5:
                    subject, sid, reply, header_size, total = fields
                else:
                    raise ProtocolError("nats: malformed HMSG")
                header_size = int(header_size)
            else:
                await self._control_line(data[position:line_end + 2])
                position = line_end + 2
                continue
            start = line_end + 2
            end = start + int(total)
            if end + 2 > end_of_data:
                self._keep(data, position, end + 2 - position)
                return
            headers = data[start:start + header_size] if header_size else None
            payload = data[start + header_size:end]
            position = end + 2
            sid = int(sid)
            sink = sinks.get(sid)
            if sink is not None and sink(subject, reply, payload, headers):
                stats = nc.stats
                stats["in_msgs"] += 1
                stats["in_bytes"] += len(payload)
            else:
                await nc._process_msg(sid, subject, reply, payload, headers)

    def _keep(self, data: bytes, position: int, needed: int) -> None:
        self._partial = bytearray(data[position:])
        self._needed = needed

    async def _control_line(self, line: bytes) -> None:
        """PING, PONG, +OK, -ERR, INFO: nats-py's parser handles them."""
        self.buf = bytearray(line)
        self.state = AWAITING_CONTROL_LINE
        await super().parse()
        if self.buf:
            raise ProtocolError("nats: unknown protocol")
