"""The projector over a real SQLite file, without a server: batches, exactly-once, queries."""

import msgspec
import pytest

from projections import projector as projector_module
from projections import reads
from projections.projector import Message, Projector
from projections.store import ProjectionStore
from projections.synthetic import mixed_calls
from schemas.events import encode_event
from schemas.subjects import Subjects
from services.runtime.errors import ServiceError

SUBJECTS = Subjects()


def as_messages(events, first_seq: int = 1) -> list[Message]:
    return [Message(seq, seq * 1000, SUBJECTS.event(event), encode_event(event), f"ack.{seq}")
            for seq, event in enumerate(events, start=first_seq)]


@pytest.fixture(scope="module")
def log() -> list[Message]:
    return as_messages(mixed_calls(120, seed=11, users=12))


def project(path, messages, batch: int) -> ProjectionStore:
    store = ProjectionStore(path)
    projector = Projector(store)
    for start in range(0, len(messages), batch):
        projector.apply(messages[start:start + batch])
    return store


def test_batch_boundaries_do_not_change_the_views(tmp_path, log):
    one = project(tmp_path / "one.sqlite", log, len(log)).dump()
    many = project(tmp_path / "many.sqlite", log, 7).dump()
    assert one == many
    assert len(one["timeline"]) == len(log) and len(one["calls"]) == 120


def test_small_cache_gives_the_same_views(tmp_path, log, monkeypatch):
    reference = project(tmp_path / "ref.sqlite", log, 50).dump()
    monkeypatch.setattr(projector_module, "CACHE_LIMIT", 8)
    assert project(tmp_path / "small.sqlite", log, 50).dump() == reference


def test_redelivered_messages_are_no_ops(tmp_path, log):
    store = project(tmp_path / "p.sqlite", log, 100)
    before = store.dump()
    again = Projector(store).apply(log[:300])
    assert (again.handled, again.applied, again.position) == (300, 0, None)
    assert store.dump() == before and store.position()[0] == len(log)


def test_a_file_reopened_after_a_crash_before_the_ack_resumes_exactly(tmp_path, log):
    reference = project(tmp_path / "ref.sqlite", log, 64).dump()
    first = Projector(ProjectionStore(tmp_path / "p.sqlite"))
    first.apply(log[:200])  # committed, then "killed" before acking: the log delivers 150.. again
    second = Projector(ProjectionStore(tmp_path / "p.sqlite"))
    assert second.next_seq == 201
    for start in range(150, len(log), 64):
        second.apply(log[start:start + 64])
    assert second.store.dump() == reference


def test_a_failed_write_leaves_nothing_and_a_retry_completes(tmp_path, log, monkeypatch):
    reference = project(tmp_path / "ref.sqlite", log, 64).dump()
    store = ProjectionStore(tmp_path / "p.sqlite")
    projector = Projector(store)
    projector.apply(log[:64])

    def broken(parameters):
        raise OSError("disk full")

    monkeypatch.setattr(store, "write", broken)
    with pytest.raises(OSError):
        projector.apply(log[64:128])
    monkeypatch.undo()
    assert projector.next_seq == 65 and store.position()[0] == 64
    for start in range(64, len(log), 64):
        projector.apply(log[start:start + 64])
    assert store.dump() == reference


def test_a_republished_event_id_moves_the_position_only(tmp_path, log):
    store = project(tmp_path / "p.sqlite", log, 100)
    before = store.dump()
    copy = log[10]
    again = Projector(store).apply([Message(len(log) + 1, 1, copy.subject, copy.data)])
    assert (again.applied, store.position()[0]) == (0, len(log) + 1)
    assert store.dump() == before


def test_a_gap_stops_the_batch_before_it(tmp_path, log):
    projector = Projector(ProjectionStore(tmp_path / "p.sqlite"))
    prepared = projector.apply(log[:10] + log[11:20])
    assert (prepared.gap, prepared.handled, projector.position) == (True, 10, 10)


def test_undecodable_events_are_kept_aside_and_passed(tmp_path, log):
    store = ProjectionStore(tmp_path / "p.sqlite")
    projector = Projector(store)
    projector.apply([*log[:3], Message(4, 4, "ringlog.evt.x.y.z.w", b'{"type": "onNothing"}'), *as_messages([], 5)])
    assert store.position()[0] == 4
    assert [row[0] for row in store.dump()["undecodable"]] == [4]


# --- queries ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory, log):
    return project(tmp_path_factory.mktemp("q") / "p.sqlite", log, 100).reader


def decode(body: bytes) -> dict:
    return msgspec.json.decode(body)


def test_call_and_room_queries(db):
    call = decode(reads.call(db, reads.CallQuery(callID="call-11-0")))
    assert call["callID"] == "call-11-0" and call["outcome"] == "answered" and call["setupSeconds"] > 0
    room = decode(reads.room(db, reads.CallQuery(callID="call-11-0")))
    assert room["members"] == [] and room["roomSessionID"] == call["roomSessionID"]
    with pytest.raises(ServiceError) as unknown:
        reads.call(db, reads.CallQuery(callID="nope"))
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_call")


def test_timeline_pages_in_log_order(db):
    seen, cursor = [], None
    while True:
        page = decode(reads.timeline(db, reads.TimelineQuery(callID="call-11-6", limit=4, cursor=cursor), SUBJECTS))
        seen += page["events"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen) and len(seen) > 4
    assert seen[0]["event"]["type"] == "onOutgoingCallSent" and seen[0]["subject"].startswith("ringlog.evt.invitation.")
    call = decode(reads.call(db, reads.CallQuery(callID="call-11-6")))
    assert len(seen) == call["events"]


def test_history_and_missed_page_newest_first(db):
    first = decode(reads.history(db, reads.UserPage(userID="user3", limit=5)))
    second = decode(reads.history(db, reads.UserPage(userID="user3", limit=5, cursor=first["nextCursor"])))
    seqs = [item["call"]["firstSeq"] for item in first["calls"] + second["calls"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) == 10
    missed = decode(reads.history(db, reads.UserPage(userID="user3", limit=500), missed_only=True))["calls"]
    everything = decode(reads.history(db, reads.UserPage(userID="user3", limit=500)))["calls"]
    assert [m["call"]["callID"] for m in missed] == [c["call"]["callID"] for c in everything if c["missed"]]
    assert all(m["role"] == "callee" and m["call"]["outcome"] in ("missed", "answered") for m in missed)


def test_active_calls_and_devices(db):
    active = decode(reads.active_calls(db, reads.Page(limit=500)))["calls"]
    assert len(active) == 24 and all(call["active"] for call in active)  # the ringing and talking ones
    assert {call["outcome"] for call in active} == {None, "answered"}
    first_seqs = [call["firstSeq"] for call in active]
    assert first_seqs == sorted(first_seqs, reverse=True)
    devices = decode(reads.devices(db, reads.UserQuery(userID="user3")))
    assert devices["userID"] == "user3" and devices["microphone"] is True
    nobody = decode(reads.devices(db, reads.UserQuery(userID="nobody")))
    assert nobody["camera"] is None and nobody["recentExceptions"] == []


@pytest.mark.parametrize("query_type, body, where", [
    (reads.UserPage, b'{"userID": "u", "limit": 0}', "$.limit"),
    (reads.UserPage, b'{"userID": "u", "cursor": "abc"}', "$.cursor"),
    (reads.UserPage, b'{"userID": "a b"}', "$.userID"),
    (reads.CallQuery, b'{}', "callID"),
])
def test_bad_query_input_names_the_field(query_type, body, where):
    with pytest.raises(msgspec.ValidationError) as error:
        reads.decode_query(body, query_type)
    assert where in str(error.value)
