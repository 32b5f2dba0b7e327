"""Typed command errors: one CommandError subclass per `Nats-Service-Error-Code` status.

    try:
        await client.accept("call42", "bob")
    except Conflict as refused:          # 409: wrong state or a concurrent change
        print(refused.code, refused.message)
    except CommandError as refused:      # any other refusal: .status .code .message
        ...

`ServiceUnavailable` is not a refusal: nobody answered (no responder, or a timeout).
"""

from __future__ import annotations


class CommandError(Exception):
    """A command refused by ringlog: `status` (400, 401, 403, 404, 409, 429, 500), `code`, `message`."""

    status: int = 0

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BadRequest(CommandError):
    """400: the payload is malformed or a field breaks a rule; the message names the field."""

    status = 400


class Unauthenticated(CommandError):
    """401: the token is missing, malformed, expired or signed with another key."""

    status = 401


class Forbidden(CommandError):
    """403: the token's user may not do this (not the acting user, not the caller, not a member)."""

    status = 403


class NotFound(CommandError):
    """404: the call (or room) is unknown."""

    status = 404


class Conflict(CommandError):
    """409: the call is in the wrong state for the command, or changed concurrently."""

    status = 409


class RateLimited(CommandError):
    """429: too many commands; the message says when to retry."""

    status = 429


class ServerError(CommandError):
    """500 (or any other status): an unexpected failure, logged by the service."""

    status = 500


class ServiceUnavailable(Exception):
    """No service answered the request (no responder, or no answer within the timeout)."""


ERROR_TYPES: dict[int, type[CommandError]] = {
    cls.status: cls for cls in (BadRequest, Unauthenticated, Forbidden, NotFound, Conflict, RateLimited, ServerError)
}


def error_for(status: int, code: str, message: str) -> CommandError:
    """The typed error of a status; unknown 4xx map to CommandError itself, 5xx to ServerError."""
    cls = ERROR_TYPES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else CommandError
    return cls(status, code, message)
