"""Users and tokens as the SDK accepts them.

A user may be given as a `User`, a dict `{"id": ..., "name": ...}` or a bare id string.
A token source is a token string (one user), or a provider `user_id -> token` (sync or
async) for a process that acts for many users (an app backend that signs tokens itself).
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Union

import msgspec

from schemas.types import User

UserLike = Union[User, dict, str]
TokenProvider = Callable[[str], Union[str, Awaitable[str]]]
TokenSource = Union[str, TokenProvider, None]


class MissingToken(RuntimeError):
    """An action needs a token for a user and the SDK was given none."""


def as_user(value: UserLike) -> User:
    if isinstance(value, User):
        return value
    if isinstance(value, str):
        return User(id=value)
    if isinstance(value, dict):
        return msgspec.convert(value, User)
    raise TypeError(f"a user is a User, a dict with `id` (and `name`) or an id string, not {type(value).__name__}")


def as_users(values: list[UserLike] | tuple[UserLike, ...]) -> list[User]:
    return [as_user(value) for value in values]


async def resolve_token(source: TokenSource, user_id: str) -> str | None:
    """The token for `user_id` from a source; None when there is no source."""
    if source is None or isinstance(source, str):
        return source
    token: Any = source(user_id)
    if inspect.isawaitable(token):
        token = await token
    return token


async def require_token(source: TokenSource, user_id: str, purpose: str) -> str:
    token = await resolve_token(source, user_id)
    if not token:
        raise MissingToken(
            f"{purpose} acts as user {user_id!r} and needs a token: create the subscriber with "
            f"token=... or token_provider=lambda user_id: ..."
        )
    return token
