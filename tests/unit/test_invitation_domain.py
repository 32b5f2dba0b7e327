"""The invitation domain as given events / when command / then events (no server, no clock)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from schemas.commands import Accept, Cancel, Decline, MissedCallClick, Received, Send
from schemas.enums import Source, ZegoCallInvitationType
from schemas.enums import ZegoSignalingPluginInvitationUserState as UserState
from schemas.events import (
    Error,
    IncomingMissedCallDialBackFailed,
    InvitationUserStateChanged,
    decode_event,
    encode_event,
)
from schemas.types import InvitationUserInfo, User, ZegoUIKitError
from services.invitation.domain import (
    InvitationStatus,
    Timeout,
    deadline,
    decide,
    engaged_users,
    evolve,
    fold,
)
from services.runtime.domain import CommandRejected, Context, KitCode, Stamper

NOW = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)
CALL = "c1"
ALICE, BOB, CAROL, DAVE = (User(id=name, name=name.title()) for name in ("alice", "bob", "carol", "dave"))


def make_ctx(now: datetime = NOW) -> Context:
    counter = itertools.count(1)
    return Context(now=now, new_id=lambda: f"evt-{next(counter)}")


_command_ids = (f"cmd-{n}" for n in itertools.count(1))


def send(*callees: User, call_type=ZegoCallInvitationType.voiceCall, timeout=60, custom="hello") -> Send:
    return Send(commandID=next(_command_ids), caller=ALICE, callees=list(callees or (BOB,)), callType=call_type,
                callID=CALL, customData=custom, timeoutSeconds=timeout)


def accept(user=BOB, custom="yes"):
    return Accept(commandID=next(_command_ids), callID=CALL, callee=user, customData=custom)


def decline(user=BOB, reason="decline", custom="no"):
    return Decline(commandID=next(_command_ids), callID=CALL, callee=user, customData=custom, reason=reason)


def cancel(user=ALICE, custom="bye"):
    return Cancel(commandID=next(_command_ids), callID=CALL, caller=user, customData=custom)


def received(user=BOB):
    return Received(commandID=next(_command_ids), callID=CALL, callee=user)


def click(user=BOB, dial_back=True):
    return MissedCallClick(commandID=next(_command_ids), callID=CALL, user=user, dialBack=dial_back)


def timeout():
    return Timeout(commandID=next(_command_ids), callID=CALL)


def given(*commands, busy=frozenset(), ctx=None):
    """Decide and fold each command in turn; return (state, every event written)."""
    ctx = ctx or make_ctx()
    state, log = None, []
    for command in commands:
        events = decide(state, command, ctx, busy=busy if isinstance(command, Send) else frozenset())
        state = fold(events, state)
        log += events
    return state, log


def when(state, command, **kwargs):
    return decide(state, command, make_ctx(NOW + timedelta(seconds=5)), **kwargs)


def summary(events):
    return [(event.type, event.recipient) for event in events]


def infos(event):
    return [(info.userID, info.state, info.extendedData) for info in event.userInfos]


def refused(state, command, **kwargs) -> CommandRejected:
    with pytest.raises(CommandRejected) as caught:
        when(state, command, **kwargs)
    return caught.value


# --- send ----------------------------------------------------------------------------


def test_send_one_to_one():
    command = send(BOB, call_type=ZegoCallInvitationType.videoCall, timeout=30)
    events = decide(None, command, make_ctx())
    assert summary(events) == [("onOutgoingCallSent", "alice"), ("onIncomingCallReceived", "bob")]
    sent, incoming = events
    assert (sent.caller, sent.callees, sent.callType, sent.customData, sent.timeoutSeconds) == (
        ALICE, [BOB], ZegoCallInvitationType.videoCall, "hello", 30)
    assert (incoming.caller, incoming.callees, incoming.callType, incoming.customData) == (
        ALICE, [BOB], ZegoCallInvitationType.videoCall, "hello")
    for seq, event in enumerate(events, 1):
        assert (event.seq, event.callID, event.source) == (seq, CALL, Source.invitation)
        assert event.causationID == command.commandID
        assert event.occurredAt == "2024-05-06T07:08:09.123Z"
        assert decode_event(encode_event(event)) == event
    assert len({event.eventID for event in events}) == 2


def test_send_builds_the_state():
    state, _ = given(send(BOB, CAROL, timeout=45))
    assert (state.version, state.call_id, state.caller, state.callType, state.customData, state.timeoutSeconds) == (
        3, CALL, ALICE, ZegoCallInvitationType.voiceCall, "hello", 45)
    assert [(c.user, c.state, c.member) for c in state.callees] == [
        (BOB, UserState.inviting, True), (CAROL, UserState.inviting, True)]
    assert state.sent_at == NOW
    assert state.status is InvitationStatus.ringing
    assert deadline(state) == NOW + timedelta(seconds=45)
    assert engaged_users(state) == {"alice", "bob", "carol"}


def test_send_to_nine_callees_rings_each_in_order():
    callees = [User(id=f"u{n}") for n in range(9)]
    events = decide(None, send(*callees), make_ctx())
    assert summary(events)[1:] == [("onIncomingCallReceived", f"u{n}") for n in range(9)]
    assert [event.seq for event in events] == list(range(1, 11))


def test_send_with_some_callees_busy():
    events = decide(None, send(BOB, CAROL, DAVE), make_ctx(), busy=frozenset({"carol"}))
    assert summary(events) == [
        ("onOutgoingCallSent", "alice"), ("onIncomingCallReceived", "bob"), ("onIncomingCallReceived", "dave"),
        ("onOutgoingCallRejectedCauseBusy", "alice")]
    assert events[0].callees == [BOB, CAROL, DAVE]
    assert events[-1].callee == CAROL
    state = fold(events)
    assert state.callee("carol").state is UserState.rejected and not state.callee("carol").member
    assert state.members == ["alice", "bob", "dave"]
    assert engaged_users(state) == {"alice", "bob", "dave"}


def test_busy_callee_gets_no_state_changes():
    state, _ = given(send(BOB, CAROL), busy=frozenset({"carol"}))
    assert summary(when(state, accept(BOB))) == [
        ("onIncomingCallAcceptButtonPressed", "bob"), ("onOutgoingCallAccepted", "alice"),
        ("onInvitationUserStateChanged", "alice")]


def test_send_with_every_callee_busy_is_over_at_once():
    state, events = given(send(BOB, CAROL), busy=frozenset({"bob", "carol"}))
    assert summary(events) == [("onOutgoingCallSent", "alice"), ("onOutgoingCallRejectedCauseBusy", "alice"),
                               ("onOutgoingCallRejectedCauseBusy", "alice")]
    assert state.status is InvitationStatus.rejected
    assert deadline(state) is None and engaged_users(state) == frozenset()
    assert when(state, timeout()) == []


def test_send_to_an_existing_call_is_refused():
    state, _ = given(send(BOB))
    error = refused(state, send(CAROL))
    assert (error.status, error.code, error.kit_code) == (409, "call_exists", KitCode.INVITATION_SEND)
    assert error.records_error_event


# --- unknown call ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [accept(), decline(), cancel(), received(), click(), timeout()],
                         ids=lambda c: type(c).__name__)
def test_any_command_but_send_on_an_unknown_call_is_404(command):
    error = refused(None, command)
    assert (error.status, error.code) == (404, "unknown_call")
    assert "c1" in error.message and not error.records_error_event


# --- received --------------------------------------------------------------------------


def test_received_tells_every_other_member():
    state, _ = given(send(BOB, CAROL, DAVE), busy=frozenset({"dave"}))
    events = when(state, received(BOB))
    assert summary(events) == [("onInvitationUserStateChanged", "alice"), ("onInvitationUserStateChanged", "carol")]
    assert all(infos(event) == [("bob", UserState.received, "")] for event in events)
    state = fold(events, state)
    assert state.callee("bob").state is UserState.received
    assert engaged_users(state) == {"alice", "bob", "carol"}


@pytest.mark.parametrize("before", [[received()], [accept()], [decline()], [timeout()], [cancel()]],
                         ids=["again", "accepted", "declined", "timed-out", "canceled"])
def test_received_when_not_inviting_writes_nothing(before):
    state, _ = given(send(BOB), *before)
    assert when(state, received()) == []


def test_received_by_someone_not_invited_is_403():
    state, _ = given(send(BOB))
    error = refused(state, received(CAROL))
    assert (error.status, error.code, error.kit_code) == (403, "not_a_callee", KitCode.INVITATION_RECEIVED)
    assert "carol" in error.message and "`$.callee.id`" in error.message


# --- accept ----------------------------------------------------------------------------


@pytest.mark.parametrize("before", [[], [received()]], ids=["inviting", "received"])
def test_accept_one_to_one(before):
    state, _ = given(send(BOB), *before)
    events = when(state, accept())
    assert summary(events) == [("onIncomingCallAcceptButtonPressed", "bob"), ("onOutgoingCallAccepted", "alice"),
                               ("onInvitationUserStateChanged", "alice")]
    assert (events[1].callee, events[1].customData) == (BOB, "yes")
    assert infos(events[2]) == [("bob", UserState.accepted, "")]
    state = fold(events, state)
    assert state.status is InvitationStatus.accepted
    assert deadline(state) is None and engaged_users(state) == frozenset()


def test_accept_in_a_group_tells_the_other_callees():
    state, _ = given(send(BOB, CAROL, DAVE))
    events = when(state, accept(CAROL))
    assert summary(events)[2:] == [("onInvitationUserStateChanged", member) for member in ("alice", "bob", "dave")]
    state = fold(events, state)
    assert state.status is InvitationStatus.ringing
    assert engaged_users(state) == {"alice", "bob", "dave"}


ANSWERS = [(accept, KitCode.INVITATION_ACCEPT), (decline, KitCode.INVITATION_REFUSE)]
REFUSED_ANSWERS = [
    ([cancel()], "call_canceled"),
    ([timeout()], "invitation_timed_out"),
    ([accept()], "already_answered"),
    ([decline()], "already_answered"),
    ([decline(reason="busy")], "already_answered"),
]


@pytest.mark.parametrize("before, code", REFUSED_ANSWERS)
@pytest.mark.parametrize("answer, kit_code", ANSWERS)
def test_answer_when_no_longer_ringing_is_409(before, code, answer, kit_code):
    state, _ = given(send(BOB), *before)
    error = refused(state, answer())
    assert (error.status, error.code, error.kit_code) == (409, code, kit_code)
    assert "bob" in error.message or "c1" in error.message


@pytest.mark.parametrize("answer, kit_code", ANSWERS)
@pytest.mark.parametrize("user", [ALICE, CAROL], ids=["caller", "stranger"])
def test_answer_by_a_non_callee_is_403(answer, kit_code, user):
    state, _ = given(send(BOB))
    error = refused(state, answer(user))
    assert (error.status, error.code, error.kit_code) == (403, "not_a_callee", kit_code)
    assert f"user {user.id} is not invited to call c1 - at `$.callee.id`" == error.message


def test_answer_by_a_callee_busy_at_send_is_409():
    state, _ = given(send(BOB, CAROL), busy=frozenset({"carol"}))
    assert refused(state, accept(CAROL)).code == "already_answered"


# --- decline ---------------------------------------------------------------------------


def test_decline_one_to_one():
    state, _ = given(send(BOB))
    events = when(state, decline())
    assert summary(events) == [("onIncomingCallDeclineButtonPressed", "bob"), ("onOutgoingCallDeclined", "alice"),
                               ("onInvitationUserStateChanged", "alice")]
    assert (events[1].callee, events[1].customData) == (BOB, "no")
    assert infos(events[2]) == [("bob", UserState.rejected, "")]
    state = fold(events, state)
    assert state.status is InvitationStatus.rejected and deadline(state) is None


def test_decline_busy_in_a_group():
    state, _ = given(send(BOB, CAROL))
    events = when(state, decline(BOB, reason="busy"))
    assert summary(events) == [("onOutgoingCallRejectedCauseBusy", "alice"),
                               ("onInvitationUserStateChanged", "alice"), ("onInvitationUserStateChanged", "carol")]
    assert (events[0].callee, events[0].customData) == (BOB, "no")
    assert all(infos(event) == [("bob", UserState.rejected, "busy")] for event in events[1:])
    state = fold(events, state)
    assert state.callee("bob").state is UserState.rejected and state.callee("bob").member
    assert engaged_users(state) == {"alice", "carol"}


# --- cancel ----------------------------------------------------------------------------


def test_cancel_tells_only_the_callees_still_ringing():
    state, _ = given(send(BOB, CAROL, DAVE), received(CAROL), decline(DAVE))
    events = when(state, cancel())
    assert summary(events) == [
        ("onOutgoingCallCancelButtonPressed", "alice"),
        ("onIncomingCallCanceled", "bob"), ("onInvitationUserStateChanged", "bob"),
        ("onIncomingCallCanceled", "carol"), ("onInvitationUserStateChanged", "carol")]
    assert (events[1].caller, events[1].customData) == (ALICE, "bye")
    assert infos(events[2]) == [("alice", UserState.cancelled, "")]
    state = fold(events, state)
    assert [c.state for c in state.callees] == [UserState.beCanceled, UserState.beCanceled, UserState.rejected]
    assert state.status is InvitationStatus.canceled
    assert deadline(state) is None and engaged_users(state) == frozenset()


@pytest.mark.parametrize("before, status, code", [
    ([], 403, "not_the_caller"),
    ([accept(CAROL)], 409, "already_accepted"),
    ([decline(BOB), decline(CAROL)], 409, "invitation_over"),
    ([timeout()], 409, "invitation_over"),
    ([cancel()], 409, "invitation_over"),
])
def test_cancel_refusals(before, status, code):
    state, _ = given(send(BOB, CAROL), *before)
    error = refused(state, cancel(BOB if code == "not_the_caller" else ALICE))
    assert (error.status, error.code, error.kit_code) == (status, code, KitCode.INVITATION_CANCEL)


# --- timeout ---------------------------------------------------------------------------


@pytest.mark.parametrize("call_type, is_video", [(ZegoCallInvitationType.voiceCall, False),
                                                  (ZegoCallInvitationType.videoCall, True)])
def test_timeout_one_to_one(call_type, is_video):
    state, _ = given(send(BOB, call_type=call_type), received())
    events = when(state, timeout())
    assert summary(events) == [("onIncomingCallTimeout", "bob"), ("onOutgoingCallTimeout", "alice"),
                               ("onInvitationUserStateChanged", "alice")]
    assert events[0].caller == ALICE
    assert (events[1].callees, events[1].isVideoCall) == ([BOB], is_video)
    assert infos(events[2]) == [("bob", UserState.timeout, "")]
    state = fold(events, state)
    assert state.status is InvitationStatus.timeout
    assert deadline(state) is None and engaged_users(state) == frozenset()


@pytest.mark.parametrize("before", [[timeout()], [accept()], [decline()], [cancel()]],
                         ids=["twice", "accepted", "declined", "canceled"])
def test_timeout_when_nobody_rings_writes_nothing(before):
    state, _ = given(send(BOB), *before)
    assert when(state, timeout()) == []


def test_group_partial_answer_then_timeout():
    state, log = given(send(BOB, CAROL, DAVE, User(id="erin")), accept(BOB), decline(CAROL))
    events = when(state, timeout())
    assert summary(events) == [
        ("onIncomingCallTimeout", "dave"), ("onIncomingCallTimeout", "erin"), ("onOutgoingCallTimeout", "alice"),
        ("onInvitationUserStateChanged", "alice"), ("onInvitationUserStateChanged", "bob"),
        ("onInvitationUserStateChanged", "carol")]
    assert events[2].callees == [DAVE, User(id="erin")]
    assert infos(events[3]) == [("dave", UserState.timeout, ""), ("erin", UserState.timeout, "")]
    state = fold(events, state)
    assert [c.state for c in state.callees] == [UserState.accepted, UserState.rejected, UserState.timeout,
                                                 UserState.timeout]
    assert state.status is InvitationStatus.accepted
    assert [event.seq for event in log + events] == list(range(1, len(log) + len(events) + 1))


# --- missed call -----------------------------------------------------------------------


@pytest.mark.parametrize("dial_back", [True, False])
def test_missed_call_click_can_be_repeated(dial_back):
    state, _ = given(send(BOB, CAROL, call_type=ZegoCallInvitationType.videoCall), timeout())
    for _ in range(2):
        events = when(state, click(BOB, dial_back))
        assert summary(events) == [("onIncomingMissedCallClicked", "bob")]
        clicked = events[0]
        assert (clicked.caller, clicked.callType, clicked.callees, clicked.customData, clicked.dialBack) == (
            ALICE, ZegoCallInvitationType.videoCall, [BOB, CAROL], "hello", dial_back)
        state = fold(events, state)
    assert state.callee("bob").state is UserState.timeout


@pytest.mark.parametrize("before, user, status, code", [
    ([timeout()], ALICE, 403, "not_a_callee"),
    ([timeout()], DAVE, 403, "not_a_callee"),
    ([], BOB, 409, "not_a_missed_call"),
    ([accept()], BOB, 409, "not_a_missed_call"),
    ([cancel()], BOB, 409, "not_a_missed_call"),
])
def test_missed_call_click_refusals(before, user, status, code):
    state, _ = given(send(BOB), *before)
    error = refused(state, click(user))
    assert (error.status, error.code, error.kit_code) == (status, code, KitCode.INVITATION_MISSED_CALL)
    assert "`$.user.id`" in error.message


# --- seq, evolve, fold -------------------------------------------------------------------


def test_seq_is_gapless_and_each_decision_shares_one_timestamp():
    ctx_times = iter(NOW + timedelta(seconds=n) for n in range(10))
    state, log = None, []
    for command in (send(BOB, CAROL, DAVE), received(BOB), accept(BOB), decline(CAROL, reason="busy"), timeout(),
                    click(DAVE), click(DAVE)):
        events = decide(state, command, make_ctx(next(ctx_times)))
        assert len({event.occurredAt for event in events}) == 1
        assert {event.causationID for event in events} == {command.commandID}
        state, log = fold(events, state), log + events
        assert state.version == log[-1].seq
    assert [event.seq for event in log] == list(range(1, len(log) + 1))


def test_fold_round_trip_matches_stepwise_evolve():
    state, log = given(send(BOB, CAROL), received(CAROL), accept(CAROL), timeout())
    assert fold(log) == state
    assert fold(log[4:], fold(log[:4])) == state
    stepwise = None
    for event in log:
        stepwise = evolve(stepwise, event)
    assert stepwise == state
    assert fold([]) is None


def test_fold_of_decoded_events_continues_the_call():
    _, log = given(send(BOB, CAROL), accept(BOB))
    state = fold(decode_event(encode_event(event)) for event in log)
    events = when(state, decline(CAROL))
    assert events[0].seq == len(log) + 1
    assert fold(events, state).status is InvitationStatus.accepted


def test_evolve_error_and_dial_back_failed_only_bump_version():
    state, log = given(send(BOB))
    envelope = dict(callID=CALL, recipient="bob", occurredAt=log[0].occurredAt, source=Source.invitation,
                    causationID="cmd-x")
    error = Error(eventID="e1", seq=state.version + 1, **envelope,
                  error=ZegoUIKitError(code=KitCode.INVITATION_ACCEPT, message="nope", method="acceptInvitation"))
    failed = IncomingMissedCallDialBackFailed(eventID="e2", seq=state.version + 2, **envelope)
    after = fold([error, failed], state)
    assert after.version == state.version + 2
    assert (after.callees, after.caller, after.sent_at) == (state.callees, state.caller, state.sent_at)


def test_refusal_error_event_continues_the_seq():
    state, _ = given(send(BOB), accept())
    with pytest.raises(CommandRejected) as caught:
        when(state, accept())
    stamp = Stamper(make_ctx(), source=Source.invitation, call_id=CALL, causation_id="cmd-x", version=state.version)
    error = caught.value.error_event(stamp, "bob")
    assert fold([error], state).version == state.version + 1


def test_evolve_refuses_events_before_the_send():
    stray = InvitationUserStateChanged(eventID="e1", callID=CALL, recipient="alice", seq=1,
                                       occurredAt="2024-05-06T07:08:09.123Z", source=Source.invitation,
                                       causationID="cmd-x",
                                       userInfos=[InvitationUserInfo(userID="bob", state=UserState.received)])
    with pytest.raises(ValueError, match="before onOutgoingCallSent"):
        evolve(None, stray)
