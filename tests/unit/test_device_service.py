"""The device service layer on a real SQLite event store, without NATS: store cost of each report."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timezone

import pytest

from schemas.commands import DeviceReport
from schemas.enums import Source, ZegoRoomStateChangedReason as RoomReason
from schemas.events import StateChanged
from schemas.types import User
from services.device import domain
from services.device.rate_limit import RepeatLimiter
from services.device.service import DeviceService
from services.runtime.errors import ServiceError
from services.runtime.handling import UnitOfWork
from services.runtime.store import EventStore
from services.runtime.views import RoomMembership

ANN, BOB, CAROL = User(id="ann", name="Ann"), User(id="bob", name="Bob"), User(id="carol")


class CountingStore:
    """Wraps an EventStore and counts every call that reaches it."""

    def __init__(self, store: EventStore):
        self.inner = store
        self.calls: list[str] = []

    def __getattr__(self, name):
        attribute = getattr(self.inner, name)
        if callable(attribute):
            def counted(*args, **kwargs):
                self.calls.append(name)
                return attribute(*args, **kwargs)
            return counted
        return attribute


class FakeClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    store = EventStore("device", str(tmp_path / "device.sqlite"))
    yield store
    store.close()


def make_service(store, rooms=None, limiter=None):
    ids = itertools.count(1)
    counted = CountingStore(store)
    uow = UnitOfWork(counted, Source.device_monitor,
                     clock=lambda: datetime(2024, 1, 1, tzinfo=timezone.utc), new_id=lambda: f"evt-{next(ids)}",
                     before_commit=lambda: counted.calls.append("before_commit"))
    return DeviceService(uow, rooms, limiter=limiter)


def report(command_id, user=ANN, call_id="call-1", **fields) -> DeviceReport:
    return DeviceReport(commandID=command_id, callID=call_id, user=user, **fields)


def joined(call_id: str, user: User) -> StateChanged:
    return StateChanged(eventID=f"join-{user.id}", callID=call_id, recipient=user.id, seq=1,
                        occurredAt="2024-01-01T00:00:00.000Z", source=Source.room, causationID="c",
                        reason=RoomReason.Logined, extendedData={"room_session_id": "s", "user_name": user.name})


async def test_a_change_costs_one_commit_and_a_repeat_touches_nothing(store):
    service = make_service(store)
    calls = service.uow.store.calls
    first = await service.report(report("c1", camera=True, microphone=False))
    assert len(first["eventIDs"]) == 2
    assert calls.count("write_group") == 1  # one transaction: events + command record
    # the miss, the retry check, then the commit (what is queued for NATS goes out first)
    assert calls == ["load", "command_record", "before_commit", "prepare_group", "write_group"]

    calls.clear()
    again = await service.report(report("c2", camera=True, microphone=False))
    assert again == {"callID": "call-1", "eventIDs": []}
    assert calls == []  # not even the command record
    assert store.command_record("c2") is None

    changed = await service.report(report("c3", camera=False))
    assert len(changed["eventIDs"]) == 1
    assert calls == ["command_record", "before_commit", "prepare_group", "write_group"]  # state from memory


async def test_commands_that_arrive_together_share_one_commit(store):
    service = make_service(store)
    calls = service.uow.store.calls
    replies = await asyncio.gather(*(service.report(report(f"c{n}", call_id=f"call-{n}", camera=True))
                                     for n in range(5)))
    assert [len(reply["eventIDs"]) for reply in replies] == [1] * 5
    assert calls.count("write_group") == calls.count("before_commit") == service.uow.groups_committed == 1
    assert all(store.command_record(f"c{n}") is not None for n in range(5))  # answered once on disk


async def test_a_retry_gets_the_first_answer_even_after_a_restart(store):
    service = make_service(store)
    first = await service.report(report("c1", camera=True))
    assert await service.report(report("c1", camera=True)) == first
    assert service.uow.store.calls.count("write_group") == 1

    restarted = make_service(store)
    assert await restarted.report(report("c1", camera=True)) == first
    assert restarted.uow.store.calls == ["load"]  # answer rebuilt from the events' causationID
    assert len(store.load(domain.aggregate_key("call-1", "ann"))) == 1


async def test_a_restarted_service_folds_the_history_once(store):
    service = make_service(store)
    await service.report(report("c1", camera=True, audioRoute="speaker"))
    restarted = make_service(store)
    assert (await restarted.report(report("c2", camera=True, audioRoute="speaker")))["eventIDs"] == []
    assert (await restarted.report(report("c3", camera=True, audioRoute="speaker")))["eventIDs"] == []
    assert restarted.devices.loads == 1


async def test_remote_exceptions_go_to_the_other_members_of_the_call_room(store):
    rooms = RoomMembership()
    for call_id, user in (("call-1", ANN), ("call-1", BOB), ("call-2", CAROL)):
        rooms.apply(joined(call_id, user))
    service = make_service(store, rooms)
    reply = await service.report(report("c1", cameraException="deviceOccupied"))
    events = store.load(domain.aggregate_key("call-1", "ann"))
    assert [(e.type, e.recipient) for e in events] == [
        ("onLocalCameraExceptionOccurred", "ann"),
        ("onRemoteCameraExceptionOccurred", "bob"),
    ]
    assert events[1].user == ANN and reply["eventIDs"] == [e.eventID for e in events]


async def test_an_empty_report_is_bad_input_naming_the_fields(store):
    service = make_service(store)
    with pytest.raises(ServiceError) as refused:
        await service.report(report("c1"))
    assert (refused.value.status, refused.value.code) == (400, "invalid_field")
    for name in ("camera", "frontFacingCamera", "microphone", "audioRoute", "cameraException", "microphoneException"):
        assert name in refused.value.message
    assert service.uow.store.calls == []


async def test_repeats_are_rate_limited_per_call_and_user(store):
    clock = FakeClock()
    service = make_service(store, limiter=RepeatLimiter(clock, rate=2, burst=3))
    await service.report(report("c0", microphone=True))
    await service.report(report("b0", user=BOB, microphone=True))
    for index in range(3):
        await service.report(report(f"r{index}", microphone=True))
    with pytest.raises(ServiceError) as limited:
        await service.report(report("r3", microphone=True))
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert "'ann'" in limited.value.message and "'call-1'" in limited.value.message
    # a retry of an answered command is a repeat too
    with pytest.raises(ServiceError):
        await service.report(report("c0", microphone=True))
    # bob's bucket is his own, and a change is never limited
    assert (await service.report(report("b1", user=BOB, microphone=True)))["eventIDs"] == []
    assert len((await service.report(report("c4", microphone=False)))["eventIDs"]) == 1
    clock.now += 0.5  # one token back
    assert (await service.report(report("r5", microphone=False)))["eventIDs"] == []


async def test_a_concurrent_writer_makes_the_service_reload(store):
    """Two processes on one database (scale-out): the stale one collides once, then reloads."""
    service = make_service(store)
    await service.report(report("c1", camera=True))
    other = make_service(store)
    await other.report(report("o1", camera=False))
    with pytest.raises(ServiceError) as conflict:
        await service.report(report("c2", camera=False))  # stale: still thinks the camera is on
    assert (conflict.value.status, conflict.value.code) == (409, "concurrent_change")
    assert store.command_record("c2") is None  # nothing partial was written
    assert await service.report(report("c2", camera=False)) == {"callID": "call-1", "eventIDs": []}
    assert len(store.load(domain.aggregate_key("call-1", "ann"))) == 2
