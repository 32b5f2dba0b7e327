"""The preload generator of `ringlog bench scale`: what it writes is what the services would."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from ringlog.bench.history import HISTORY_GAP, MIX, History, calls_for_events
from ringlog.bench.preload import group_by_service, preload
from schemas.enums import Source
from schemas.events import RemoteCameraExceptionOccurred, RemoteMicrophoneExceptionOccurred, decode_event, encode_event
from services.device import domain as device_domain
from services.invitation import domain as invitation_domain
from services.room import domain as room_domain
from services.room.service import abandon_command_id
from services.runtime.handling import internal_command_id
from services.runtime.relay_position import RelayPosition
from services.runtime.store import EventStore

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
SOURCES = {"invitation": Source.invitation, "room": Source.room, "device": Source.device_monitor}


@pytest.fixture(scope="module")
def writes():
    history = History(2 * len(MIX), seed=7, now=NOW)  # every kind of call, twice
    return [write for chunk in history.chunks(9) for write in chunk]


def streams_of(writes):
    streams = defaultdict(list)
    for write in writes:
        streams[(write.service, write.stream)] += write.events
    return streams


def test_seq_is_gapless_per_stream_of_each_service(writes):
    streams = streams_of(writes)
    assert {service for service, _ in streams} == set(SOURCES)
    for (service, stream), events in streams.items():
        assert [event.seq for event in events] == list(range(1, len(events) + 1)), (service, stream)


def test_events_decode_as_the_log_reads_them(writes):
    events = [event for write in writes for event in write.events]
    assert len(events) > 300
    for event in events:
        again = decode_event(encode_event(event))
        assert again == event and again.type == event.type
    assert len({event.eventID for event in events}) == len(events)


def test_stream_ids_and_sources_are_the_services_own(writes):
    for write in writes:
        for event in write.events:
            assert event.source is SOURCES[write.service]
            if write.service == "device":
                reporter = event.user.id if isinstance(
                    event, (RemoteCameraExceptionOccurred, RemoteMicrophoneExceptionOccurred)) else event.recipient
                assert write.stream == device_domain.aggregate_key(event.callID, reporter)
            else:
                assert write.stream == event.callID


def test_each_command_leaves_its_record_and_causes_its_events(writes):
    ids = Counter(write.record.commandID for write in writes)
    assert max(ids.values()) == 1
    for write in writes:
        assert all(event.causationID == write.record.commandID for event in write.events)
        if write.record.status == 200:
            assert write.record.reply["eventIDs"] == [event.eventID for event in write.events]
    verbs = Counter(write.record.verb for write in writes)
    assert {"send", "received", "accept", "decline", "cancel", "missed_call_click", "join", "hang_up", "kick",
            "report", "Timeout", "Abandon"} <= set(verbs)
    internal = {write.record.commandID for write in writes if write.record.verb in ("Timeout", "Abandon")}
    calls = {write.events[0].callID for write in writes if write.record.verb in ("Timeout", "Abandon")}
    assert internal <= {internal_command_id("timeout", call) for call in calls} | {abandon_command_id(c) for c in calls}
    assert any(write.record.status == 409 and [e.type for e in write.events] == ["onError"] for write in writes)


def test_every_call_is_finished_and_in_the_past(writes):
    streams = streams_of(writes)
    newest = NOW - HISTORY_GAP
    for (service, stream), events in streams.items():
        assert all(datetime.fromisoformat(event.occurredAt) <= newest for event in events)
        if service == "invitation":
            assert invitation_domain.deadline(invitation_domain.fold(events)) is None, stream
        elif service == "room":
            assert room_domain.members(room_domain.fold(events)) == (), stream
        else:
            device_domain.fold(events)  # folds without a gap or a foreign event
    assert max(event.occurredAt for events in streams.values() for event in events) < (
        NOW - timedelta(minutes=11)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_the_mix_has_about_the_expected_size():
    history = History(calls_for_events(20_000), seed=3, now=NOW)
    events = sum(len(write.events) for chunk in history.chunks(500) for write in chunk)
    assert 17_000 < events < 23_000
    assert calls_for_events(0) == 0 and calls_for_events(5) == 1


def test_same_seed_same_history_other_seed_other_ids():
    one = [write.record for chunk in History(30, seed=1, now=NOW).chunks(7) for write in chunk]
    again = [write.record for chunk in History(30, seed=1, now=NOW).chunks(30) for write in chunk]
    other = [write.record for chunk in History(30, seed=2, now=NOW).chunks(7) for write in chunk]
    assert one == again
    assert not {record.commandID for record in one} & {record.commandID for record in other}


def test_group_by_service_keeps_decision_order(writes):
    groups = group_by_service(writes)
    assert sum(len(items) for items in groups.values()) == len(writes)
    invitation = [write for write in writes if write.service == "invitation"]
    assert [record.commandID for _, record in groups["invitation"]] == [w.record.commandID for w in invitation]


def test_preload_writes_each_store_and_sets_the_relay_positions(tmp_path):
    loaded = preload(tmp_path, None, calls=len(MIX), seed=5, calls_per_chunk=6, now=NOW)
    expected = streams_of([write for chunk in History(len(MIX), seed=5, now=NOW).chunks(6) for write in chunk])
    assert loaded.total_events == sum(len(events) for events in expected.values())
    for name in ("invitation", "room", "device"):
        path = str(tmp_path / f"{name}.sqlite")
        store = EventStore(name, path)
        try:
            streams = {stream: events for (service, stream), events in expected.items() if service == name}
            for stream, events in streams.items():
                assert store.load(stream) == events
            stored = list(store.events_since(0))
            assert len(stored) == loaded.events[name]
            assert store.max_position() == loaded.positions[name] > 0
            first = stored[0][1]
            assert store.command_record(first.causationID) is not None
            assert store.command_record(first.causationID).commandID == first.causationID
        finally:
            store.close()
        position = RelayPosition(path, name)
        assert position.get() == loaded.positions[name]
        position.close()
