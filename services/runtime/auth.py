"""Identity: an HS256 JWT in the `Authorization` header whose `sub` is the acting user."""

from __future__ import annotations

import time
from collections import OrderedDict

import jwt

ALGORITHM = "HS256"


class Unauthenticated(Exception):
    pass


def issue_token(secret: str, user_id: str, ttl_seconds: int = 30 * 24 * 3600, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    return jwt.encode({"sub": user_id, "iat": issued, "exp": issued + ttl_seconds}, secret, algorithm=ALGORITHM)


_verified: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
_VERIFIED_MAX = 10_000


def user_from_headers(headers: dict[str, str] | None, secret: str) -> str:
    """The token's user id, or Unauthenticated saying what is wrong.

    Clients send the same token with every command: a verified token is remembered (with
    its expiry) so the HMAC and JSON work is done once per token, not once per command.
    """
    value = (headers or {}).get("Authorization", "")
    if not value:
        raise Unauthenticated("missing token - at header `Authorization` (expected `Bearer <JWT>`)")
    scheme, _, token = value.partition(" ")
    if scheme != "Bearer" or not token:
        raise Unauthenticated("malformed token - at header `Authorization` (expected `Bearer <JWT>`)")
    remembered = _verified.get((secret, token))
    if remembered is not None and remembered[1] > time.time():
        return remembered[0]
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub"]})
    except jwt.PyJWTError as error:
        raise Unauthenticated(f"invalid token: {error} - at header `Authorization`") from error
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("token `sub` must be a user id - at header `Authorization`")
    _verified[(secret, token)] = (subject, float(claims.get("exp", float("inf"))))
    while len(_verified) > _VERIFIED_MAX:
        _verified.popitem(last=False)
    return subject
