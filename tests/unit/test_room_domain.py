"""The room's pure domain: given events / when command / then events (ARCHITECTURE.md 3.1)."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

from schemas.commands import HangUp, Join, Kick, ReportState
from schemas.enums import Source, ZegoRoomStateChangedReason as RoomReason
from schemas.events import CallEnd, Enter, Error, Event, HangUpConfirmation, Leave, StateChanged, decode_event, encode_event
from schemas.types import User, ZegoUIKitError
from services.room.domain import Abandon, ExpectMembers, RoomState, decide, evolve, fold, members
from services.runtime.domain import CommandRejected, Context, KitCode, Stamper

NOW = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc)
CALL = "c1"
ALICE, BOB, CAROL, DAVE = (User(id=uid, name=uid.title()) for uid in ("alice", "bob", "carol", "dave"))


def make_ctx(prefix: str = "id") -> Context:
    counter = itertools.count(1)
    return Context(now=NOW, new_id=lambda: f"{prefix}-{next(counter)}")


_command_ids = itertools.count(1)


def join(user: User) -> Join:
    return Join(commandID=f"cmd-{next(_command_ids)}", callID=CALL, user=user)


def hang_up(user: User) -> HangUp:
    return HangUp(commandID=f"cmd-{next(_command_ids)}", callID=CALL, user=user)


def kick(kicker: User, target: User) -> Kick:
    return Kick(commandID=f"cmd-{next(_command_ids)}", callID=CALL, kicker=kicker, target=target)


def report(user: User, reason: RoomReason, **extra) -> ReportState:
    return ReportState(commandID=f"cmd-{next(_command_ids)}", callID=CALL, user=user, reason=reason, **extra)


def abandon(*expected: User) -> Abandon:
    return Abandon(commandID=f"cmd-{next(_command_ids)}", callID=CALL, expected=list(expected))


def given(*commands, ctx: Context | None = None) -> tuple[RoomState | None, list[Event]]:
    """The room after the commands, and the events they wrote (the 'given' history)."""
    ctx = ctx or make_ctx("given")
    state, history = None, []
    for command in commands:
        events = decide(state, command, ctx)
        state = fold(events, state)
        history.extend(events)
    return state, history


def then(events: list[Event]) -> list[tuple]:
    """A compact view of events: (callback, recipient, what it says)."""
    view = []
    for event in events:
        if isinstance(event, StateChanged):
            detail = event.reason.value
        elif isinstance(event, (Enter, Leave)):
            detail = event.user.id
        elif isinstance(event, CallEnd):
            detail = event.reason.value if event.kickerUserID is None else (event.reason.value, event.kickerUserID)
        elif isinstance(event, HangUpConfirmation):
            detail = event.confirmed
        else:
            detail = None
        view.append((event.type, event.recipient, detail))
    return view


def rejected(state, command, **kwargs) -> CommandRejected:
    with pytest.raises(CommandRejected) as caught:
        decide(state, command, make_ctx(), **kwargs)
    return caught.value


def ids(users) -> list[str]:
    return [user.id for user in users]


# --- join ---------------------------------------------------------------------------


def test_join_into_an_empty_room_logs_in_and_starts_a_session():
    events = decide(None, join(ALICE), make_ctx())
    assert then(events) == [("onStateChanged", "alice", "Logining"), ("onStateChanged", "alice", "Logined")]
    assert events[1].extendedData == {"room_session_id": "id-1", "user_name": "Alice"}
    state = fold(events)
    assert members(state) == (ALICE,) and state.room_session_id == "id-1" and state.version == 2


def test_join_into_a_non_empty_room_fans_out_enter_both_ways():
    state, _ = given(join(ALICE))
    events = decide(state, join(BOB), make_ctx())
    assert then(events) == [
        ("onStateChanged", "bob", "Logining"),
        ("onStateChanged", "bob", "Logined"),
        ("onEnter", "bob", "alice"),
        ("onEnter", "alice", "bob"),
    ]
    assert events[1].extendedData == {"room_session_id": state.room_session_id, "user_name": "Bob"}
    assert events[2].user == ALICE and events[3].user == BOB
    assert ids(members(fold(events, state))) == ["alice", "bob"]


def test_third_joiner_gets_one_enter_per_member_in_join_order():
    state, _ = given(join(ALICE), join(BOB))
    events = decide(state, join(CAROL), make_ctx())
    assert then(events)[2:] == [
        ("onEnter", "carol", "alice"),
        ("onEnter", "carol", "bob"),
        ("onEnter", "alice", "carol"),
        ("onEnter", "bob", "carol"),
    ]


def test_events_of_one_decision_share_the_envelope_and_continue_the_seq():
    state, _ = given(join(ALICE))
    command = join(BOB)
    events = decide(state, command, make_ctx("e"))
    assert [event.seq for event in events] == [3, 4, 5, 6]
    assert {event.occurredAt for event in events} == {"2025-03-04T05:06:07.890Z"}
    assert {(event.callID, event.source.value, event.causationID) for event in events} == {(CALL, "room", command.commandID)}
    assert len({event.eventID for event in events}) == len(events)


def test_same_user_joining_again_kicks_out_the_old_session_without_churn_for_others():
    state, _ = given(join(ALICE), join(BOB))
    events = decide(state, join(ALICE), make_ctx())
    assert then(events) == [
        ("onStateChanged", "alice", "KickOut"),
        ("onStateChanged", "alice", "Logining"),
        ("onStateChanged", "alice", "Logined"),
        ("onEnter", "alice", "bob"),
    ]
    assert events[2].extendedData == {"room_session_id": state.room_session_id, "user_name": "Alice"}
    after = fold(events, state)
    assert ids(members(after)) == ["alice", "bob"] and after.room_session_id == state.room_session_id


def test_a_renewed_login_keeps_its_place_and_takes_the_new_name():
    state, _ = given(join(ALICE), join(BOB), join(User(id="alice", name="Alice on the tablet")))
    assert members(state) == (User(id="alice", name="Alice on the tablet"), BOB)


def test_room_session_id_stays_while_occupied_and_is_new_after_the_room_emptied():
    state, history = given(join(ALICE), join(BOB), hang_up(BOB))
    first_session = history[1].extendedData["room_session_id"]
    assert state.members == {} and state.room_session_id is None
    events = decide(state, join(ALICE), make_ctx("next"))
    assert then(events) == [("onStateChanged", "alice", "Logining"), ("onStateChanged", "alice", "Logined")]
    second_session = events[1].extendedData["room_session_id"]
    assert second_session != first_session
    assert fold(events, state).room_session_id == second_session


# --- hang up ------------------------------------------------------------------------


def test_vetoed_hang_up_records_only_the_answer_and_the_user_stays():
    state, _ = given(join(ALICE), join(BOB))
    events = decide(state, hang_up(ALICE), make_ctx(), hang_up_confirmed=False)
    assert then(events) == [("onHangUpConfirmation", "alice", False)]
    assert ids(members(fold(events, state))) == ["alice", "bob"]


def test_two_party_hang_up_ends_the_call_for_the_other_with_remote_hang_up():
    state, _ = given(join(ALICE), join(BOB))
    events = decide(state, hang_up(ALICE), make_ctx())
    assert then(events) == [
        ("onHangUpConfirmation", "alice", True),
        ("onStateChanged", "alice", "Logout"),
        ("onCallEnd", "alice", "localHangUp"),
        ("onLeave", "bob", "alice"),
        ("onCallEnd", "bob", "remoteHangUp"),
        ("onStateChanged", "bob", "Logout"),
    ]
    after = fold(events, state)
    assert members(after) == () and after.room_session_id is None


def test_lone_member_hanging_up_empties_the_room():
    state, _ = given(join(ALICE))
    events = decide(state, hang_up(ALICE), make_ctx())
    assert then(events) == [
        ("onHangUpConfirmation", "alice", True),
        ("onStateChanged", "alice", "Logout"),
        ("onCallEnd", "alice", "localHangUp"),
    ]
    assert members(fold(events, state)) == ()


def test_group_of_three_one_leaves_and_the_call_goes_on():
    state, _ = given(join(ALICE), join(BOB), join(CAROL))
    events = decide(state, hang_up(BOB), make_ctx())
    assert then(events) == [
        ("onHangUpConfirmation", "bob", True),
        ("onStateChanged", "bob", "Logout"),
        ("onCallEnd", "bob", "localHangUp"),
        ("onLeave", "alice", "bob"),
        ("onLeave", "carol", "bob"),
    ]
    after = fold(events, state)
    assert ids(members(after)) == ["alice", "carol"] and after.room_session_id == state.room_session_id


def test_a_member_can_hang_up_only_once():
    state, _ = given(join(ALICE), join(BOB), join(CAROL), hang_up(BOB))
    error = rejected(state, hang_up(BOB))
    assert (error.status, error.code) == (403, "not_a_member")
    assert error.message == "user bob is not in room c1 - at `$.user.id`"
    assert (error.kit_code, error.method) == (KitCode.ROOM_LOGOUT, "room.hang_up")


def test_commands_for_an_unknown_room_are_404():
    for command in (hang_up(ALICE), kick(ALICE, BOB), report(ALICE, RoomReason.Reconnecting)):
        error = rejected(None, command)
        assert (error.status, error.code) == (404, "unknown_room")
        assert not error.records_error_event


# --- kick ---------------------------------------------------------------------------


def test_kick_removes_the_target_and_tells_the_others():
    state, _ = given(join(ALICE), join(BOB), join(CAROL))
    events = decide(state, kick(ALICE, BOB), make_ctx())
    assert then(events) == [
        ("onCallEnd", "bob", ("kickOut", "alice")),
        ("onStateChanged", "bob", "Logout"),
        ("onLeave", "alice", "bob"),
        ("onLeave", "carol", "bob"),
    ]
    assert ids(members(fold(events, state))) == ["alice", "carol"]


def test_kick_in_a_two_party_call_ends_it_for_the_kicker_too():
    state, _ = given(join(ALICE), join(BOB))
    events = decide(state, kick(BOB, ALICE), make_ctx())
    assert then(events) == [
        ("onCallEnd", "alice", ("kickOut", "bob")),
        ("onStateChanged", "alice", "Logout"),
        ("onLeave", "bob", "alice"),
        ("onCallEnd", "bob", "remoteHangUp"),
        ("onStateChanged", "bob", "Logout"),
    ]
    assert members(fold(events, state)) == ()


@pytest.mark.parametrize(
    ("kicker", "target", "status", "code", "path"),
    [
        (DAVE, BOB, 403, "not_a_member", "$.kicker.id"),
        (ALICE, DAVE, 409, "target_not_in_room", "$.target.id"),
        (ALICE, ALICE, 409, "cannot_kick_self", "$.target.id"),
    ],
)
def test_kick_refusals(kicker, target, status, code, path):
    state, _ = given(join(ALICE), join(BOB))
    error = rejected(state, kick(kicker, target))
    assert (error.status, error.code, error.kit_code, error.method) == (status, code, KitCode.ROOM_KICK, "room.kick")
    assert error.message.endswith(f"- at `{path}`") and error.records_error_event


# --- report state -------------------------------------------------------------------


def test_member_reports_reconnecting_with_its_code_and_data():
    state, _ = given(join(ALICE), join(BOB))
    events = decide(state, report(ALICE, RoomReason.Reconnecting, errorCode=1002, extendedData={"k": 1}), make_ctx())
    assert then(events) == [("onStateChanged", "alice", "Reconnecting")]
    assert (events[0].errorCode, events[0].extendedData) == (1002, {"k": 1})
    assert ids(members(fold(events, state))) == ["alice", "bob"]


def test_reconnect_failed_takes_the_user_out_and_ends_a_two_party_call():
    state, _ = given(join(ALICE), join(BOB))
    events = decide(state, report(BOB, RoomReason.ReconnectFailed), make_ctx())
    assert then(events) == [
        ("onStateChanged", "bob", "ReconnectFailed"),
        ("onLeave", "alice", "bob"),
        ("onCallEnd", "alice", "remoteHangUp"),
        ("onStateChanged", "alice", "Logout"),
    ]
    assert members(fold(events, state)) == ()


def test_reconnect_failed_in_a_group_leaves_the_others_talking():
    state, _ = given(join(ALICE), join(BOB), join(CAROL))
    events = decide(state, report(CAROL, RoomReason.ReconnectFailed), make_ctx())
    assert then(events) == [
        ("onStateChanged", "carol", "ReconnectFailed"),
        ("onLeave", "alice", "carol"),
        ("onLeave", "bob", "carol"),
    ]
    assert ids(members(fold(events, state))) == ["alice", "bob"]


def test_report_for_a_room_the_user_is_not_in_is_refused():
    state, _ = given(join(ALICE))
    error = rejected(state, report(DAVE, RoomReason.Reconnecting))
    assert (error.status, error.code, error.kit_code) == (403, "not_a_member", KitCode.ROOM_REPORT_STATE)
    assert error.message == "user dave is not in room c1 - at `$.user.id`"


def test_a_non_member_may_report_login_failed():
    state, _ = given(join(ALICE))
    events = decide(state, report(DAVE, RoomReason.LoginFailed, errorCode=1002033), make_ctx())
    assert then(events) == [("onStateChanged", "dave", "LoginFailed")]
    assert events[0].errorCode == 1002033
    assert ids(members(fold(events, state))) == ["alice"]


@pytest.mark.parametrize("reason", [RoomReason.Logining, RoomReason.Logined, RoomReason.Logout, RoomReason.KickOut])
def test_server_reasons_are_not_reportable(reason):
    state, _ = given(join(ALICE))
    error = rejected(state, report(ALICE, reason))
    assert (error.status, error.code, error.kit_code) == (409, "reason_not_reportable", KitCode.ROOM_REPORT_STATE)
    assert error.message.endswith("- at `$.reason`")


# --- abandon ------------------------------------------------------------------------


def test_abandon_ends_the_call_of_a_caller_left_alone():
    state, _ = given(join(ALICE))
    events = decide(state, abandon(ALICE, BOB), make_ctx())
    assert then(events) == [("onCallEnd", "alice", "abandoned"), ("onStateChanged", "alice", "Logout")]
    after = fold(events, state)
    assert members(after) == () and after.room_session_id is None


def test_abandon_ends_it_for_everyone_present_when_no_expected_callee_arrived():
    state, _ = given(join(ALICE), join(DAVE))
    events = decide(state, abandon(ALICE, BOB, CAROL), make_ctx())
    assert then(events) == [
        ("onCallEnd", "alice", "abandoned"),
        ("onStateChanged", "alice", "Logout"),
        ("onCallEnd", "dave", "abandoned"),
        ("onStateChanged", "dave", "Logout"),
    ]
    assert members(fold(events, state)) == ()


def test_abandon_is_a_no_op_once_an_expected_callee_arrived_or_without_members():
    in_call, _ = given(join(ALICE), join(CAROL))
    assert decide(in_call, abandon(ALICE, BOB, CAROL), make_ctx()) == []
    emptied, _ = given(join(ALICE), hang_up(ALICE))
    assert decide(emptied, abandon(ALICE, BOB), make_ctx()) == []
    assert decide(None, abandon(ALICE, BOB), make_ctx()) == []


def test_expect_members_records_nothing_and_turns_into_abandon():
    expectation = ExpectMembers(commandID="x", callID=CALL, expected=[ALICE, BOB], acceptedAt="2025-03-04T05:06:07.890Z")
    assert decide(None, expectation, make_ctx()) == []
    assert expectation.abandon("y") == Abandon(commandID="y", callID=CALL, expected=[ALICE, BOB])


# --- evolve -------------------------------------------------------------------------


def test_on_error_only_bumps_the_version():
    state, _ = given(join(ALICE))
    stamp = Stamper(make_ctx(), source=Source.room, call_id=CALL, causation_id="refused", version=state.version)
    error = stamp(Error, "alice", error=ZegoUIKitError(code=KitCode.ROOM_LOGOUT, message="m", method="room.hang_up"))
    after = evolve(state, error)
    assert after.version == state.version + 1
    assert (after.members, after.room_session_id) == (state.members, state.room_session_id)


def test_evolve_refuses_a_gap_in_seq_and_events_of_another_call():
    state, history = given(join(ALICE))
    with pytest.raises(ValueError, match="seq"):
        evolve(state, history[0])
    join_other_call = Join(commandID="z", callID="other", user=BOB)
    with pytest.raises(ValueError, match="other"):
        evolve(state, decide(None, join_other_call, make_ctx())[0])
    with pytest.raises(ValueError, match="other"):
        decide(state, join_other_call, make_ctx())


def test_state_folds_the_same_from_the_wire_and_names_survive_a_lone_join():
    _, history = given(join(ALICE), join(BOB), join(CAROL), hang_up(BOB), join(DAVE))
    from_wire = fold(decode_event(encode_event(event)) for event in history)
    assert from_wire == fold(history)
    assert members(from_wire) == (ALICE, CAROL, DAVE)
    assert from_wire.version == len(history)


def test_members_of_no_room_is_empty_and_decide_is_deterministic():
    assert members(None) == ()
    assert fold([]) is None
    state, _ = given(join(ALICE))
    command = join(BOB)
    assert decide(state, command, make_ctx()) == decide(state, command, make_ctx())
