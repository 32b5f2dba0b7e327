"""The event store (a SQLite file, and SQLite in memory through eventsourcing alone): atomic
appends, command records, conflicts, recent streams, positions of written rows."""

import pytest

from schemas.events import OutgoingCallSent, OutgoingCallAccepted
from schemas.types import User
from services.runtime.store import CommandRecord, DuplicateWrite, EventStore


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    if request.param == "file":
        store = EventStore("invitation", str(tmp_path / "invitation.sqlite"))
    else:
        store = EventStore("invitation", env={"SQLITE_DBNAME": ":memory:"})
    yield store
    store.close()


def sent(call_id: str, at: str, seq: int = 1, custom: str = "") -> OutgoingCallSent:
    return OutgoingCallSent(eventID=f"{call_id}-{seq}", callID=call_id, recipient="ann", seq=seq, occurredAt=at,
                            source="invitation", causationID=f"k-{call_id}", caller=User(id="ann"),
                            callees=[User(id="bob")], callType="voiceCall", customData=custom)


def accepted(call_id: str, at: str, seq: int) -> OutgoingCallAccepted:
    return OutgoingCallAccepted(eventID=f"{call_id}-{seq}", callID=call_id, recipient="ann", seq=seq, occurredAt=at,
                                source="invitation", causationID=f"a-{call_id}", callee=User(id="bob"))


def test_events_and_the_command_record_are_written_together(store):
    store.append([("c1", [sent("c1", "2026-01-01T00:00:00.000Z")])], CommandRecord(commandID="k-c1", verb="send"))
    assert [event.eventID for event in store.load("c1")] == ["c1-1"]
    assert store.command_record("k-c1").verb == "send"
    assert store.command_record("unknown") is None


def test_a_conflicting_group_writes_nothing(store):
    store.append([("c1", [sent("c1", "2026-01-01T00:00:00.000Z")])], None)
    group = [
        ([("c2", [sent("c2", "2026-01-01T00:00:01.000Z")])], CommandRecord(commandID="k-c2", verb="send")),
        ([("c1", [sent("c1", "2026-01-01T00:00:02.000Z")])], None),  # seq 1 of c1 exists
    ]
    with pytest.raises(DuplicateWrite):
        store.append_group(group)
    assert store.load("c2") == [] and store.command_record("k-c2") is None


def test_written_rows_are_the_notification_log_byte_for_byte(store):
    store.append([("c0", [sent("c0", "2026-01-01T00:00:00.000Z")])], None)
    tricky = 'quote " backslash \\ tab \t ü 日本 \u2028 emoji 😀 nul \x00 end'
    group = [([(f"c{index}", [sent(f"c{index}", "2026-01-01T00:00:00.000Z", custom=tricky)])],
              CommandRecord(commandID=f"k-{index}", verb="send")) for index in range(1, 260)]
    written = store.write_group(store.prepare_group(group))  # more rows than one INSERT takes
    assert len(written) == 2 * 259
    assert [row.id for row in written] == list(range(2, 2 + len(written)))
    log = store.notifications(1, 1000)
    assert [(row.id, row.topic, bytes(row.state)) for row in log] == [(row.id, row.topic, row.state) for row in written]
    assert written[0].payload == group[0][0][0][1][0] and written[1].payload == group[0][1]
    assert store.load("c7")[0].customData == tricky
    assert store.write_group(store.prepare_group([])) == []


def test_an_event_that_breaks_the_catalog_is_refused_before_anything_is_written(store):
    from services.runtime.store import InvalidEvent

    bad = sent("c1", "2026-01-01T00:00:00.000Z", custom="x" * 5000)  # customData is at most 4 KB
    with pytest.raises(InvalidEvent, match="customData"):
        store.prepare_group([([("c1", [bad])], None)])
    assert store.max_position() == 0


def test_recent_streams_follow_activity_not_history(store):
    store.append([("old", [sent("old", "2026-01-01T00:00:00.000Z")])], None)
    store.append([("recent", [sent("recent", "2026-01-01T01:00:00.000Z")])], None)
    store.append([("newest", [sent("newest", "2026-01-01T01:09:00.000Z")])], None)
    store.append([("old", [accepted("old", "2026-01-01T01:10:00.000Z", 2)])], CommandRecord(commandID="x", verb="accept"))
    assert store.recent_streams("onOutgoingCallSent", 660) == ["recent", "newest"]
    assert store.recent_streams("onOutgoingCallSent", 60) == ["newest"]
    assert store.recent_streams("onOutgoingCallSent", 30) == []


def test_the_notification_log_reads_as_eventsourcing_reads_it(store):
    for index in range(12):
        call = f"c{index}"
        store.append([(call, [sent(call, "2026-01-01T00:00:00.000Z"), accepted(call, "2026-01-01T00:00:01.000Z", 2)])],
                     CommandRecord(commandID=f"k-{call}", verb="send"))
    library = store.recorder.select_notifications(start=5, limit=20, inclusive_of_start=False)
    ours = store.notifications(5, 20)
    assert [(row.id, row.topic, bytes(row.state)) for row in ours] == [
        (note.id, note.topic, bytes(note.state)) for note in library]
    assert len(ours) == 20 and ours[0].id == 6
    assert store.notifications(store.max_position(), 10) == []
    assert [event.eventID for _, event in store.events_since(0)][:3] == ["c0-1", "c0-2", "c1-1"]

