"""Subscriber routing, de-duplication, delivery helpers and default actions, without a server."""

import asyncio
from dataclasses import dataclass, field

import msgspec
import pytest
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from ringlog import default_actions
from ringlog.callbacks import CallEvents, InvitationEvents
from ringlog.client import Client
from ringlog.delivery import (
    DurableOptions, PoisonEvent, consumer_config, covering_subject, dead_letter_subject,
)
from ringlog.errors import Forbidden
from ringlog.subscriber import CallbackSubscriber, SeenEvents
from schemas.enums import ZegoCallEndReason, ZegoRoomStateChangedReason
from schemas.events import CallEnd, IncomingMissedCallClicked, StateChanged, encode_event
from schemas.subjects import Subjects
from schemas.types import User

ENVELOPE = dict(callID="c1", recipient="bob", occurredAt="2024-01-01T00:00:00.000Z", causationID="k")


def call_end(seq=5, event_id="end-1"):
    return CallEnd(eventID=event_id, seq=seq, source="room", reason=ZegoCallEndReason.remoteHangUp, **ENVELOPE)


def state(reason, seq):
    return StateChanged(eventID=f"s{seq}", seq=seq, source="room", reason=reason, **ENVELOPE)


def clicked(dial_back):
    return IncomingMissedCallClicked(
        eventID="m1", seq=9, source="invitation", caller=User(id="alice"), callType="videoCall",
        callees=[User(id="bob", name="Bob")], customData="cd", dialBack=dial_back, **ENVELOPE)


def test_seen_events_is_a_bounded_lru():
    seen = SeenEvents(size=2)
    for event_id in ("a", "b"):
        seen.add(event_id)
    assert "a" in seen  # touching "a" makes "b" the oldest
    seen.add("c")
    assert len(seen) == 2 and "b" not in seen and "a" in seen and "c" in seen


def test_subjects_for_delivery():
    subjects = Subjects()
    one = subjects.event_filter("user", "onEnter", None, "ann.lee@x")
    two = subjects.event_filter("user", "onLeave", None, "ann.lee@x")
    three = subjects.event_filter("call", "onCallEnd", None, "ann.lee@x")
    assert covering_subject(subjects, [one]) == one
    assert covering_subject(subjects, [one, two]) == "ringlog.evt.user.*.*.ann%2Elee%40x"
    assert covering_subject(subjects, [one, two, three]) == "ringlog.evt.*.*.*.ann%2Elee%40x"
    assert dead_letter_subject(subjects, "billing", "ringlog.evt.call.onCallEnd.c1.bob") == \
        "ringlog.dlq.billing.call.onCallEnd.c1.bob"
    with pytest.raises(ValueError):
        dead_letter_subject(subjects, "billing", "ringlog.cmd.room.join")


def test_durable_options_and_consumer_config():
    for bad in ({"name": "a.b"}, {"name": ""}, {"name": "x", "deliver": "last"}, {"name": "x", "max_deliver": 0}):
        with pytest.raises(ValueError):
            DurableOptions(**bad)
    options = DurableOptions(name="billing", max_deliver=4, ack_wait=7.0)
    config = consumer_config(options, ["a.b", "a.c"], DeliverPolicy.ALL)
    assert (config.durable_name, config.max_deliver, config.max_ack_pending, config.filter_subjects,
            config.filter_subject, config.ack_wait) == ("billing", 5, 1, ["a.b", "a.c"], None, 7.0)
    assert consumer_config(options, ["a.b"], DeliverPolicy.NEW).filter_subject == "a.b"


def subscriber(**options):
    client = Client(nc=None, token_provider=lambda user_id: f"t-{user_id}")
    return CallbackSubscriber(client, **options)


def test_filters_follow_the_user_and_call_and_each_callbacks_categories():
    sub = subscriber(user="ann.lee@x", call="call 1".replace(" ", "-"))
    sub.events.user.onEnter = print
    sub.subscribe("onError", print)
    assert sub.filters() == [
        "ringlog.evt.user.onEnter.call-1.ann%2Elee%40x",
        "ringlog.evt.invitation.onError.call-1.ann%2Elee%40x",
        "ringlog.evt.call.onError.call-1.ann%2Elee%40x",
    ]
    with pytest.raises(ValueError, match="unknown callback"):
        sub.subscribe("onSomethingElse", print)
    with pytest.raises(ValueError, match="no handler"):
        asyncio.run(subscriber().start())


async def test_handle_runs_sync_and_async_handlers_once_per_event_id():
    got = []

    async def on_enter(user):
        got.append(("kit", user.id))

    sub = subscriber(events=CallEvents(), invitation_events=InvitationEvents())
    sub.events.user.onEnter = on_enter
    sub.subscribe("onEnter", lambda event: got.append(("typed", event.recipient)))
    sub._routes = {}
    for route in sub.routes():
        sub._routes.setdefault(route.filter_key(), []).append(route)
    enter = msgspec.json.encode({"type": "onEnter", "eventID": "e1", "seq": 1, "source": "room",
                                 "user": {"id": "carol"}, **ENVELOPE})
    assert await sub.handle("ringlog.evt.user.onEnter.c1.bob", enter) is True
    assert await sub.handle("ringlog.evt.user.onEnter.c1.bob", enter) is False  # the same eventID again
    assert await sub.handle("ringlog.evt.user.onLeave.c1.bob", enter) is False  # not subscribed
    assert got == [("kit", "carol"), ("typed", "bob")] and (sub.handled, sub.duplicates) == (1, 1)
    with pytest.raises(PoisonEvent):
        await sub.handle("ringlog.evt.user.onEnter.c1.bob", b'{"type": "onEnter"}')


async def test_a_failing_handler_leaves_the_event_unseen_for_a_retry():
    calls = []

    def flaky(user):
        calls.append(user.id)
        if len(calls) == 1:
            raise RuntimeError("once")

    sub = subscriber()
    sub.events.user.onLeave = flaky
    sub._routes = {("user", "onLeave"): sub.routes()}
    leave = msgspec.json.encode({"type": "onLeave", "eventID": "e2", "seq": 1, "source": "room",
                                 "user": {"id": "carol"}, **ENVELOPE})
    with pytest.raises(RuntimeError):
        await sub.handle("ringlog.evt.user.onLeave.c1.bob", leave)
    assert await sub.handle("ringlog.evt.user.onLeave.c1.bob", leave) is True and calls == ["carol", "carol"]


async def test_default_action_runs_once_and_reports_its_outcome():
    runs = []

    async def run():
        runs.append(1)
        return "done"

    action = default_actions.DefaultAction(run)
    assert await default_actions.DefaultAction(run).settle() is None  # never called: nothing to wait for
    first, again = action(), action.call()
    assert first is again and await action.settle() == "done" and runs == [1]


@dataclass
class FakeStream:
    """get_last_msg answers from a list of states (one per poll), then keeps the last."""

    states: list
    polls: int = 0

    async def get_last_msg(self, stream, subject):
        self.polls += 1
        current = self.states[min(self.polls, len(self.states)) - 1]
        if current is None:
            raise NotFoundError()

        @dataclass
        class Raw:
            data: bytes

        return Raw(encode_event(current))


@pytest.mark.parametrize("states, expected", [
    ([None], False),  # never in the room
    ([state(ZegoRoomStateChangedReason.Logout, 4)], False),  # left before the end (localHangUp)
    ([state(ZegoRoomStateChangedReason.Logined, 2), state(ZegoRoomStateChangedReason.Logout, 6)], False),  # left just after
    ([state(ZegoRoomStateChangedReason.Logined, 9)], False),  # joined again later: a new session
    ([state(ZegoRoomStateChangedReason.Logined, 2)], True),  # still in, and nothing follows
])
async def test_still_in_room_reads_the_log(states, expected):
    stream = FakeStream(states)
    assert await default_actions.still_in_room(stream, "s", call_end(), settle_seconds=0.05, poll=0.01) is expected


@dataclass
class FakeClient:
    stream: FakeStream
    answer: object = None
    commands: list = field(default_factory=list)
    subjects: Subjects = field(default_factory=Subjects)

    @property
    def nc(self):
        return self

    def jetstream(self):
        return self.stream

    async def hang_up(self, call_id, user, *, command_id, token):
        self.commands.append(("hang_up", call_id, user, command_id, token))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def send_invitation(self, caller, callees, call_type, *, custom_data, command_id, token):
        self.commands.append(("send", caller, callees, call_type, custom_data, command_id, token))
        return "sent"


async def test_leave_room_hangs_up_a_user_still_in_and_accepts_not_a_member():
    inside = [state(ZegoRoomStateChangedReason.Logined, 2)]
    client = FakeClient(FakeStream(inside), answer="reply")
    assert await default_actions.leave_room(client, call_end(), "tok", settle_seconds=0.01) == "reply"
    assert client.commands == [("hang_up", "c1", "bob", "leave-end-1", "tok")]
    gone = FakeClient(FakeStream(inside), answer=Forbidden(403, "not_a_member", "left"))
    assert await default_actions.leave_room(gone, call_end(), "tok", settle_seconds=0.01) is None
    other = FakeClient(FakeStream(inside), answer=Forbidden(403, "not_token_user", "x"))
    with pytest.raises(Forbidden):
        await default_actions.leave_room(other, call_end(), "tok", settle_seconds=0.01)
    out = FakeClient(FakeStream([state(ZegoRoomStateChangedReason.Logout, 4)]))
    assert await default_actions.leave_room(out, call_end(), None, settle_seconds=0.01) is None and not out.commands


async def test_dial_back_sends_as_the_recipient_unless_the_service_did():
    client = FakeClient(FakeStream([None]))
    assert await default_actions.dial_back(client, clicked(dial_back=True), "tok") is None and not client.commands
    assert await default_actions.dial_back(client, clicked(dial_back=False), lambda user_id: f"t-{user_id}") == "sent"
    assert client.commands == [("send", User(id="bob", name="Bob"), [User(id="alice")], "videoCall", "cd", "dialBack-m1", "t-bob")]
