"""Read-model folding without a server: one call's view and one user's devices, from events."""

import random

import pytest

from projections import synthetic as syn
from projections.call_view import CallView, finish, fold_call, participants
from projections.device_view import fold_device, is_device_event
from schemas import events as ev
from schemas.types import User

ALICE, BOB, CAROL, DAN = (User(id=name, name=name.title()) for name in ("alice", "bob", "carol", "dan"))


def script(call_id: str = "call-1") -> syn.CallScript:
    return syn.CallScript(call_id, syn.START, random.Random(7))


def fold_all(events) -> CallView:
    view = None
    for seq, event in enumerate(events, start=100):
        view = fold_call(view, event, seq)
    return finish(view)


def callee_states(view: CallView) -> dict[str, tuple[str, bool]]:
    return {callee.id: (callee.state, callee.busy) for callee in view.callees}


def test_answered_call_with_room_talk_and_hang_up():
    s, room = script(), []
    syn.send(s, ALICE, [BOB])
    syn.accept(s, ALICE, BOB, [ALICE, BOB])
    syn.join(s, ALICE, room)
    syn.join(s, BOB, room)
    during = fold_all(s.events)
    assert during.active and [m.id for m in during.members] == ["alice", "bob"] and during.talkingSince
    syn.hang_up(s, ALICE, room)
    view = fold_all(s.events)

    assert view.outcome == "answered" and not view.active and view.members == []
    assert view.caller.id == "alice" and view.callType == "videoCall" and view.customData == "data-call-1"
    assert callee_states(view) == {"bob": ("accepted", False)}
    sent, accepted = s.events[0].occurredAt, s.events[2].occurredAt
    assert view.sentAt == sent and view.firstAcceptedAt == accepted and view.setupSeconds > 0
    assert [(stay.userID, stay.leftReason) for stay in view.stays] == [("alice", "Logout"), ("bob", "Logout")]
    assert view.roomSessionID == s.session and all(stay.roomSessionID == s.session for stay in view.stays)
    assert [(end.userID, end.reason) for end in view.endReasons] == [("alice", "localHangUp"), ("bob", "remoteHangUp")]
    bob_joined = view.stays[1].joinedAt
    assert view.talkSeconds > 0 and view.talkingSince is None and view.endedAt == s.events[-1].occurredAt
    assert view.talkSeconds == pytest.approx(syn_seconds(bob_joined, view.endedAt))
    assert view.events == len(s.events) and view.firstSeq == 100 and view.lastSeq == 99 + len(s.events)


def syn_seconds(start: str, end: str) -> float:
    from projections.call_view import seconds_between

    return seconds_between(start, end)


@pytest.mark.parametrize("kind, outcome, states", [
    ("declined", "declined", {"bob": ("rejected", False)}),
    ("busy_at_send", "busy", {"bob": ("rejected", True)}),
    ("busy_decline", "busy", {"bob": ("rejected", True)}),
    ("canceled", "canceled", {"bob": ("beCanceled", False)}),
    ("missed", "missed", {"bob": ("timeout", False)}),
])
def test_outcome_of_an_unanswered_invitation(kind, outcome, states):
    s = script()
    syn.send(s, ALICE, [BOB], busy=("bob",) if kind == "busy_at_send" else ())
    if kind in ("declined", "busy_decline"):
        syn.decline(s, ALICE, BOB, [ALICE, BOB], busy=kind == "busy_decline")
    elif kind == "canceled":
        syn.cancel(s, ALICE, [BOB])
    elif kind == "missed":
        syn.time_out(s, ALICE, [BOB], [ALICE, BOB])
    view = fold_all(s.events)
    assert (view.outcome, callee_states(view), view.active) == (outcome, states, False)
    assert view.endedAt == s.events[-1].occurredAt and view.setupSeconds is None
    missed = {row[0]: row[4] for row in participants(view)}
    assert missed == {"alice": 0, "bob": int(kind == "missed")}


def test_ringing_call_is_active_without_outcome():
    s = script()
    syn.send(s, ALICE, [BOB, CAROL])
    view = fold_all(s.events)
    assert view.active and view.outcome is None and view.endedAt is None
    assert [(c.id, c.state, c.received) for c in view.callees] == [("bob", "inviting", True), ("carol", "inviting", True)]


def test_group_call_each_callee_answers_on_their_own_and_a_kick():
    s, members, room = script(), [ALICE, BOB, CAROL, DAN], []
    syn.send(s, ALICE, [BOB, CAROL, DAN])
    syn.accept(s, ALICE, BOB, members)
    syn.decline(s, ALICE, CAROL, members)
    syn.time_out(s, ALICE, [DAN], members)
    syn.join(s, ALICE, room), syn.join(s, BOB, room)
    syn.kick(s, ALICE, BOB, room)
    view = fold_all(s.events)
    assert view.outcome == "answered"
    assert callee_states(view) == {"bob": ("accepted", False), "carol": ("rejected", False), "dan": ("timeout", False)}
    assert [(end.userID, end.reason, end.kickerUserID) for end in view.endReasons] == [
        ("bob", "kickOut", "alice"), ("alice", "remoteHangUp", None)]
    assert {row[0]: (row[2], row[4]) for row in participants(view)} == {
        "alice": ("caller", 0), "bob": ("callee", 0), "carol": ("callee", 0), "dan": ("callee", 1)}


def test_abandoned_call():
    s, room = script(), []
    syn.send(s, ALICE, [BOB])
    syn.accept(s, ALICE, BOB, [ALICE, BOB])
    syn.join(s, ALICE, room)
    syn.abandon(s, room)
    view = fold_all(s.events)
    assert view.outcome == "abandoned" and view.abandoned and not view.active and view.talkSeconds == 0
    assert view.endedAt == s.events[-1].occurredAt  # over, so no longer active


def test_membership_comes_from_the_users_own_state_changes_only():
    s, room = script(), []
    syn.join(s, ALICE, room), syn.join(s, BOB, room)
    copies = [event for event in s.events if isinstance(event, ev.Enter)]
    assert len(copies) == 2
    s.room(ev.Leave, "alice", user=BOB)  # a fan-out copy alone changes nothing
    assert [m.id for m in fold_all(s.events).members] == ["alice", "bob"]
    s.room(ev.StateChanged, "bob", reason="KickOut")  # bob logs in elsewhere: same stay
    s.room(ev.StateChanged, "bob", reason="Logining")
    s.room(ev.StateChanged, "bob", reason="Logined", extendedData={"room_session_id": s.session, "user_name": "Bob"})
    s.room(ev.StateChanged, "bob", reason="Reconnecting")
    view = fold_all(s.events)
    assert [m.id for m in view.members] == ["alice", "bob"] and len(view.stays) == 2
    s.room(ev.StateChanged, "bob", reason="ReconnectFailed")
    view = fold_all(s.events)
    assert [m.id for m in view.members] == ["alice"] and view.stays[1].leftReason == "ReconnectFailed"
    assert view.outcome is None and view.caller is None and view.active  # a room entered without invitation
    assert {row[0]: row[2] for row in participants(view)} == {"alice": "member", "bob": "member"}


def test_events_out_of_order_still_name_every_callee():
    s = script()
    syn.send(s, ALICE, [BOB, CAROL])
    sent, received_bob, received_carol = s.events
    view = fold_all([received_carol, sent, received_bob])
    assert [c.id for c in view.callees] == ["bob", "carol"] and all(c.received for c in view.callees)


def test_devices_fold_state_and_local_exceptions_not_remote_copies():
    s = script()
    s.device(ev.CameraStateChanged, BOB, "bob", isOpened=True)
    s.device(ev.FrontFacingCameraStateChanged, BOB, "bob", isFronted=False)
    s.device(ev.MicrophoneStateChanged, BOB, "bob", isOpened=False)
    s.device(ev.AudioOutputChanged, BOB, "bob", audioRoute="bluetooth")
    s.device(ev.LocalCameraExceptionOccurred, BOB, "bob", exception="deviceOccupied")
    s.device(ev.RemoteCameraExceptionOccurred, BOB, "alice", user=BOB, exception="deviceOccupied")
    s.device(ev.LocalMicrophoneExceptionOccurred, BOB, "bob", exception=None)
    device_events = [event for event in s.events if is_device_event(event)]
    assert len(device_events) == 6 and not is_device_event(s.events[5])
    view = None
    for event in device_events:
        view = fold_device(view, event)
    assert (view.userID, view.camera, view.frontFacingCamera, view.microphone, view.audioRoute) == (
        "bob", True, False, False, "bluetooth")
    assert view.lastExceptions["camera"].exception == "deviceOccupied"
    assert view.lastExceptions["microphone"].exception is None
    assert [(e.device, e.exception) for e in view.recentExceptions] == [("camera", "deviceOccupied"), ("microphone", None)]
    assert view.callID == "call-1" and view.updatedAt == s.events[-1].occurredAt


def test_recent_exceptions_are_bounded():
    from projections.device_view import RECENT_EXCEPTIONS

    s, view = script(), None
    for index in range(RECENT_EXCEPTIONS + 5):
        s.device(ev.LocalCameraExceptionOccurred, BOB, "bob", exception="generic")
    for event in s.events:
        view = fold_device(view, event)
    assert len(view.recentExceptions) == RECENT_EXCEPTIONS
