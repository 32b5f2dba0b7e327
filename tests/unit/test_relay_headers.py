"""The relay's ready-made headers are what nats-py would send for the same dict."""

import pytest

from schemas.subjects import STREAM_NAME
from schemas.ids import new_uuid
from services.runtime.relay import Relay
from services.runtime.wire import header_block


@pytest.mark.parametrize("event_id", [new_uuid(), "abc", "evt_1-2", " padded ", "new\r\nline", "ü-id", "50%b"])
def test_headers_match_the_general_header_block(event_id):
    relay = Relay.__new__(Relay)  # _headers uses no state
    assert relay._headers(event_id) == header_block({"Nats-Msg-Id": event_id, "Nats-Expected-Stream": STREAM_NAME})
