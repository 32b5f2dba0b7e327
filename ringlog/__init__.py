"""ringlog: the server side of a call kit. Command line and client SDK."""

from schemas.ids import decode_token, encode_token

__all__ = ["encode_token", "decode_token"]
