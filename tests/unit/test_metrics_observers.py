"""Call metrics from committed events: the observers fed with what the real domains decide."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry

from schemas.commands import Accept, Cancel, Decline, DeviceReport, HangUp, Join, Send
from schemas.events import Event
from schemas.types import User
from services.device import domain as device_domain
from services.invitation import domain as invitation_domain
from services.room import domain as room_domain
from services.runtime.call_metrics import DeviceMetrics, InvitationMetrics, RoomMetrics
from services.runtime.domain import Context
from services.runtime.event_metrics import CommitObservers, DeviceExceptions, InvitationOutcomes, RoomSessions

T0 = datetime(2025, 1, 2, 3, 4, 5, 0, tzinfo=timezone.utc)
ALICE, BOB, CAROL = (User(id=name) for name in ("alice", "bob", "carol"))
_ids = itertools.count(1)


def ctx(seconds: float = 0.0) -> Context:
    return Context(now=T0 + timedelta(seconds=seconds), new_id=lambda: f"id-{next(_ids)}")


def cid() -> str:
    return f"cmd-{next(_ids)}"


class Invitations:
    """Decides invitation commands for one call and feeds the events to the observer."""

    def __init__(self, call_id: str = "c1"):
        self.registry = CollectorRegistry()
        self.observer = InvitationOutcomes(InvitationMetrics(self.registry))
        self.call_id = call_id
        self.state = None

    def do(self, command, at: float = 0.0, **inputs) -> list[Event]:
        events = invitation_domain.decide(self.state, command, ctx(at), **inputs)
        self.state = invitation_domain.fold(events, self.state)
        self.observer.observe(events)
        return events

    def send(self, *callees: User, busy=frozenset()):
        return self.do(Send(commandID=cid(), caller=ALICE, callees=list(callees), callType="voiceCall",
                            callID=self.call_id), busy=busy)

    def outcomes(self) -> dict[str, float]:
        found = {}
        for outcome in ("answered", "declined", "busy", "canceled", "missed"):
            value = self.registry.get_sample_value("ringlog_call_outcomes_total", {"outcome": outcome})
            if value:
                found[outcome] = value
        return found

    def setup(self, suffix: str) -> float | None:
        return self.registry.get_sample_value(f"ringlog_call_setup_seconds_{suffix}")


def accept(call: Invitations, user: User) -> Accept:
    return Accept(commandID=cid(), callID=call.call_id, callee=user)


def decline(call: Invitations, user: User, reason: str = "decline") -> Decline:
    return Decline(commandID=cid(), callID=call.call_id, callee=user, reason=reason)


def test_the_first_acceptance_answers_the_call_and_times_its_setup():
    call = Invitations()
    call.send(BOB, CAROL)
    call.do(accept(call, BOB), at=2.5)
    call.do(accept(call, CAROL), at=4.0)
    assert call.outcomes() == {"answered": 1}
    assert (call.setup("count"), call.setup("sum")) == (1, 2.5)
    assert call.observer.calls == {}  # nothing left to follow once nobody rings


def test_a_group_call_answered_after_a_decline_and_before_a_timeout_is_only_answered():
    call = Invitations()
    call.send(BOB, CAROL)
    call.do(decline(call, BOB), at=1)
    call.do(accept(call, CAROL), at=2)
    assert call.outcomes() == {"answered": 1}

    late = Invitations("c2")
    late.send(BOB, CAROL)
    late.do(accept(late, BOB), at=1)
    late.do(invitation_domain.Timeout(commandID=cid(), callID="c2"), at=60)
    assert late.outcomes() == {"answered": 1}


@pytest.mark.parametrize("steps, outcome", [
    (lambda call: call.do(decline(call, BOB)), "declined"),
    (lambda call: call.do(decline(call, BOB, reason="busy")), "busy"),
    (lambda call: call.do(Cancel(commandID=cid(), callID=call.call_id, caller=ALICE)), "canceled"),
    (lambda call: call.do(invitation_domain.Timeout(commandID=cid(), callID=call.call_id), at=60), "missed"),
])
def test_an_unanswered_invitation_ends_with_one_outcome(steps, outcome):
    call = Invitations()
    call.send(BOB)
    steps(call)
    assert call.outcomes() == {outcome: 1}
    assert call.setup("count") == 0


def test_busy_at_send_and_a_mix_of_busy_and_declined():
    call = Invitations()
    call.send(BOB, busy=frozenset({"bob"}))
    assert call.outcomes() == {"busy": 1}

    mixed = Invitations("c2")
    mixed.send(BOB, CAROL, busy=frozenset({"bob"}))
    mixed.do(decline(mixed, CAROL), at=1)
    assert mixed.outcomes() == {"declined": 1}


def test_a_restart_seeds_the_ringing_invitations_without_counting_them():
    before = Invitations()
    before.send(BOB, CAROL)
    before.do(decline(before, BOB), at=1)

    after = Invitations()  # a new process: fresh metrics, the recovered state
    after.state = before.state
    after.observer.seed([before.state])
    assert after.outcomes() == {}
    after.do(invitation_domain.Timeout(commandID=cid(), callID="c1"), at=60)
    assert after.outcomes() == {"missed": 1}

    answered = Invitations()
    answered.state = before.state
    answered.observer.seed([before.state])
    answered.do(accept(answered, CAROL), at=7)
    assert answered.outcomes() == {"answered": 1}
    assert answered.setup("sum") == 7


class Room:
    def __init__(self, call_id: str = "r1", shared_with: "Room | None" = None):
        self.registry = shared_with.registry if shared_with else CollectorRegistry()
        self.observer = shared_with.observer if shared_with else RoomSessions(RoomMetrics(self.registry))
        self.call_id = call_id
        self.state = None
        self.log: list[Event] = []

    def do(self, command, at: float = 0.0) -> list[Event]:
        events = room_domain.decide(self.state, command, ctx(at))
        self.state = room_domain.fold(events, self.state)
        self.log += events
        self.observer.observe(events)
        return events

    def value(self, name: str, **labels) -> float | None:
        return self.registry.get_sample_value(name, labels)


def join(room: Room, user: User, at: float = 0.0):
    return room.do(Join(commandID=cid(), callID=room.call_id, user=user), at)


def test_members_and_active_calls_follow_joins_and_leaves_and_talk_time_is_the_room_session():
    room = Room()
    join(room, ALICE, at=0)
    join(room, BOB, at=3)
    other = Room("r2", shared_with=room)
    join(other, CAROL, at=1)
    assert (room.value("ringlog_room_members"), room.value("ringlog_calls_active")) == (3, 2)

    join(room, BOB, at=4)  # the same user logs in again: still one member
    assert room.value("ringlog_room_members") == 3
    room.do(HangUp(commandID=cid(), callID="r1", user=BOB), at=65)  # alice is left alone: the call ends
    assert (room.value("ringlog_room_members"), room.value("ringlog_calls_active")) == (1, 1)
    assert room.value("ringlog_call_talk_seconds_count") == 1
    assert room.value("ringlog_call_talk_seconds_sum") == 65
    assert room.value("ringlog_call_talk_seconds_bucket", le="60.0") == 0
    assert room.value("ringlog_call_talk_seconds_bucket", le="120.0") == 1


def test_an_abandoned_call_counts_once_whatever_the_members():
    room = Room()
    join(room, ALICE)
    join(room, CAROL)
    room.do(room_domain.Abandon(commandID=cid(), callID="r1", expected=[ALICE, BOB]), at=30)
    assert room.value("ringlog_call_outcomes_total", outcome="abandoned") == 1
    assert room.value("ringlog_calls_active") == 0
    assert room.value("ringlog_call_talk_seconds_count") == 1


def test_a_restart_replays_the_rooms_without_counting():
    room = Room()
    join(room, ALICE, at=0)
    join(room, BOB, at=1)
    restarted = RoomSessions(RoomMetrics(registry := CollectorRegistry()))
    restarted.seed(room.log)
    assert registry.get_sample_value("ringlog_room_members") == 2
    assert registry.get_sample_value("ringlog_call_talk_seconds_count") == 0
    events = room_domain.decide(room.state, HangUp(commandID=cid(), callID="r1", user=BOB), ctx(10))
    restarted.observe(events)
    assert registry.get_sample_value("ringlog_call_talk_seconds_sum") == 10  # the session began before the restart


def test_device_exceptions_by_device_and_type():
    registry = CollectorRegistry()
    observer = DeviceExceptions(DeviceMetrics(registry))
    report = DeviceReport(commandID=cid(), callID="c1", user=ALICE, cameraException="permissionNotGranted",
                          microphoneException=None)
    events = device_domain.decide(None, report, ctx(), room_members=(ALICE, BOB, CAROL))
    observer.observe(events)  # the remote copies for bob and carol are not counted again
    value = registry.get_sample_value
    assert value("ringlog_device_exceptions_total", {"device": "camera", "type": "permissionNotGranted"}) == 1
    assert value("ringlog_device_exceptions_total", {"device": "microphone", "type": "unspecified"}) == 1


def test_commit_observers_always_wake_first_and_survive_a_failing_observer(caplog):
    woken, seen = [], []
    observers = CommitObservers(lambda: woken.append(True))
    observers.add(lambda events: 1 / 0)
    observers.add(seen.append)
    observers(["event"])
    assert woken == [True] and seen == [["event"]]
    assert "commit observer" in caplog.text
