"""Id rules (ARCHITECTURE.md 2.1), the one encoding of ids into subject tokens, and new ids."""

from __future__ import annotations

import os
import re
import time

USER_ID_MAX_BYTES = 64
CALL_ID_MAX_BYTES = 128
COMMAND_ID_MAX_BYTES = 128

# The kit's own rule: letters, digits and ~!@#$%^&*()_+=-`;',.<>/\
_ALLOWED = re.compile(r"[A-Za-z0-9~!@#$%^&*()_+=\-`;',.<>/\\]+")
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


class InvalidId(ValueError):
    """An id that breaks the id rules; `field` names where it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{message} - at `{field}`")
        self.field = field
        self.reason = message


def check_id(value: object, field: str, max_bytes: int) -> str:
    if not isinstance(value, str):
        raise InvalidId(field, f"Expected `str`, got `{type(value).__name__}`")
    size = len(value.encode("utf-8"))
    if size == 0:
        raise InvalidId(field, "id must not be empty")
    if size > max_bytes:
        raise InvalidId(field, f"id is {size} bytes, at most {max_bytes} allowed")
    if not _ALLOWED.fullmatch(value):
        bad = next(ch for ch in value if not _ALLOWED.fullmatch(ch))
        raise InvalidId(field, f"id contains {bad!r}; allowed are letters, digits and ~!@#$%^&*()_+=-`;',.<>/\\")
    return value


def check_user_id(value: object, field: str = "$.user.id") -> str:
    return check_id(value, field, USER_ID_MAX_BYTES)


def check_call_id(value: object, field: str = "$.callID") -> str:
    return check_id(value, field, CALL_ID_MAX_BYTES)


_PLAIN = re.compile(r"[A-Za-z0-9_-]+")


def encode_token(raw_id: str) -> str:
    """Write an id as one subject token: every byte outside [A-Za-z0-9_-] becomes %XX."""
    if not raw_id:
        raise InvalidId("id", "id must not be empty")
    if _PLAIN.fullmatch(raw_id):
        return raw_id
    return "".join(
        chr(byte) if byte in _SAFE_BYTES else f"%{byte:02X}" for byte in raw_id.encode("utf-8")
    )


def decode_token(token: str) -> str:
    """Inverse of encode_token."""
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(token):
        raw.extend(token[position : match.start()].encode("ascii"))
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw.extend(token[position:].encode("ascii"))
    return raw.decode("utf-8")


_random_tails: list[bytes] = []
os.register_at_fork(after_in_child=_random_tails.clear)  # a forked child draws its own
_CLEAR_VERSION_AND_VARIANT = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_7_RFC_9562 = (0x7000 << 64) | (0x8000 << 48)


def new_uuid() -> str:
    """A version 7 UUID (RFC 9562) in its usual text form: the Unix time in milliseconds,
    then 74 random bits.

    Ids made close in time sort close together, so the store indexes keyed by them (a
    call's stream, a command's record) take each new key on their newest pages; random
    (version 4) ids land anywhere in the index, and a group commit then writes about
    three times as many pages, fsync included (docs/performance.md, step 38). The OS's
    randomness is read 2.5 KB at a time instead of one `getrandom` call per id.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(_random_tail(), "big")
    value = (value & _CLEAR_VERSION_AND_VARIANT) | _VERSION_7_RFC_9562
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _random_tail() -> bytes:
    """10 random bytes; safe from several threads (a `pop` is atomic, a refill keeps its first)."""
    try:
        return _random_tails.pop()
    except IndexError:
        raw = os.urandom(10 * 256)
        _random_tails.extend(raw[i:i + 10] for i in range(10, len(raw), 10))
        return raw[:10]

