"""The one place that turns exceptions into service errors (status, code, message)."""

from __future__ import annotations

import logging

import msgspec

from schemas.commands import InvalidCommand
from schemas.ids import InvalidId
from services.runtime.auth import Unauthenticated
from services.runtime.domain import CommandRejected
from services.runtime.store import DuplicateWrite

log = logging.getLogger(__name__)


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> bytes:
        return msgspec.json.encode({"error": {"code": self.code, "message": self.message}})


class RateLimited(ServiceError):
    def __init__(self, message: str):
        super().__init__(429, "rate_limited", message)


def to_service_error(error: BaseException) -> ServiceError:
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, CommandRejected):
        return ServiceError(error.status, error.code, error.message)
    if isinstance(error, Unauthenticated):
        return ServiceError(401, "unauthenticated", str(error))
    if isinstance(error, msgspec.ValidationError):
        return ServiceError(400, "invalid_field", str(error))
    if isinstance(error, msgspec.DecodeError):
        return ServiceError(400, "malformed_json", f"request body is not valid JSON: {error}")
    if isinstance(error, (InvalidCommand, InvalidId)):
        return ServiceError(400, "invalid_field", str(error))
    if isinstance(error, DuplicateWrite):
        return ServiceError(409, "concurrent_change", "another command changed this call at the same time; retry")
    log.exception("unexpected error", exc_info=error)
    return ServiceError(500, "internal", f"unexpected {type(error).__name__}; the failure was logged")
