"""The flows of `bench flows` against the real services, with the ids each mode promises."""

from __future__ import annotations

import uuid

import pytest

from ringlog.bench.flows import EVENTS_PER_FLOW, FlowDriver, Measured
from tests.integration.harness import SECRET


@pytest.mark.parametrize("random_ids, version", [(False, 7), (True, 4)])
async def test_flows_write_their_events_under_the_ids_of_their_mode(services, client, log, random_ids, version):
    await services("invitation", "room", "device")
    measured = Measured()
    driver = FlowDriver(client, SECRET, measured, random_ids)
    for number in range(3):
        await driver.flow(number)
    assert measured.failures == {} and measured.flows_done == 3
    events = [event for _, event in await log.wait_for(3 * EVENTS_PER_FLOW)]
    assert sorted(event.eventID for event in events) == sorted(measured.answered_event_ids)
    call_ids = {event.callID for event in events}
    command_ids = {event.causationID for event in events}
    assert len(call_ids) == 3 and len(command_ids) == 3 * 8
    # default: the service's callIDs and the SDK's commandIDs, both time-ordered (version 7);
    # --random-ids: the clients' own version 4 ids
    assert {uuid.UUID(value).version for value in call_ids | command_ids} == {version}
