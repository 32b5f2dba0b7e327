"""The one place that builds subjects (ARCHITECTURE.md section 2)."""

from __future__ import annotations

import re

from schemas.events import Event, category_of
from schemas.ids import decode_token, encode_token

DEFAULT_PREFIX = "ringlog"
STREAM_NAME = "RINGLOG_EVENTS"
# One or more dot-separated tokens, none empty, none holding whitespace or a wildcard.
_PREFIX = re.compile(r"[^\s.*>]+(?:\.[^\s.*>]+)*")


class Subjects:
    def __init__(self, prefix: str = DEFAULT_PREFIX):
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise ValueError(f"invalid subject prefix {prefix!r}")
        self.prefix = prefix

    # event log ----------------------------------------------------------------------
    @property
    def events_all(self) -> str:
        return f"{self.prefix}.evt.>"

    def event(self, event: Event) -> str:
        return self.event_subject(category_of(event.type, event.source), event.type, event.callID, event.recipient)

    def event_subject(self, category: str, callback: str, call_id: str, recipient: str) -> str:
        return f"{self.prefix}.evt.{category}.{callback}.{encode_token(call_id)}.{encode_token(recipient)}"

    def event_filter(
        self, category: str | None = None, callback: str | None = None, call_id: str | None = None, user: str | None = None
    ) -> str:
        """A wildcard subject for the given filters; None means any."""
        tokens = [
            category or "*",
            callback or "*",
            encode_token(call_id) if call_id is not None else "*",
            encode_token(user) if user is not None else "*",
        ]
        return f"{self.prefix}.evt." + ".".join(tokens)

    def parse_event_subject(self, subject: str) -> tuple[str, str, str, str]:
        """(category, callback, callID, recipient) of an event subject."""
        head = f"{self.prefix}.evt."
        if not subject.startswith(head):
            raise ValueError(f"not an event subject: {subject}")
        tokens = subject[len(head) :].split(".")
        if len(tokens) != 4 or not all(tokens):
            raise ValueError(f"not an event subject (want {head}<category>.<callback>.<callID>.<recipient>): {subject}")
        category, callback, call_token, user_token = tokens
        return category, callback, decode_token(call_token), decode_token(user_token)

    # request / reply ----------------------------------------------------------------
    def command(self, service: str, verb: str) -> str:
        return f"{self.prefix}.cmd.{service}.{verb}"

    def query(self, name: str) -> str:
        return f"{self.prefix}.query.{name}"

    def hang_up_hook(self, call_id: str, user_id: str) -> str:
        return f"{self.prefix}.hook.onHangUpConfirmation.{encode_token(call_id)}.{encode_token(user_id)}"
