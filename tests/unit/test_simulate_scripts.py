"""The outcome scripts: which user sends which command, what is awaited, what the timer writes."""

import random

import pytest

from ringlog.simulation.mix import OUTCOMES
from ringlog.simulation.scripts import (
    Await, Command, Either, Pause, Together, Timing, commands_of, plan, timer_events,
)

TIMING = Timing(ring_timeout=2, talk=(0.2, 0.4))


def steps_of(outcome, callees=("bob",), seed=1, **options):
    return plan(outcome, "c1", "ann", tuple(callees), random.Random(seed), TIMING, **options)


def verbs(call):
    return [(command.actor, command.label) for command in commands_of(call.steps)]


def invitation_part(call):
    return [pair for pair in verbs(call) if pair[1].startswith("invitation.")]


def test_accept_rings_acknowledges_accepts_then_both_join_report_and_one_hangs_up():
    call = steps_of("accept")
    assert invitation_part(call) == [("ann", "invitation.send"), ("bob", "invitation.received"),
                                     ("bob", "invitation.accept")]
    joins = [actor for actor, label in verbs(call) if label == "room.join"]
    hang_ups = [actor for actor, label in verbs(call) if label == "room.hang_up"]
    reports = {actor for actor, label in verbs(call) if label == "device.report"}
    assert sorted(joins) == ["ann", "bob"] and reports == {"ann", "bob"}
    assert len(hang_ups) == 1  # the other one gets remoteHangUp
    assert call.steps[1] == Await("onIncomingCallReceived", "bob")  # the callee acts on the event
    assert Await("onOutgoingCallAccepted", "ann") in call.steps
    assert call.timer_events == {}


def test_the_send_carries_the_short_ring_timeout_and_the_users():
    send = steps_of("decline").steps[0]
    assert isinstance(send, Command) and send.label == "invitation.send"
    assert send.fields["timeoutSeconds"] == 2
    assert send.fields["caller"]["id"] == "ann"
    assert [callee["id"] for callee in send.fields["callees"]] == ["bob"]
    assert send.fields["callType"] in ("voiceCall", "videoCall")


@pytest.mark.parametrize("outcome, reason", [("decline", "decline"), ("busy", "busy")])
def test_decline_and_busy_decline_with_their_reason(outcome, reason):
    call = steps_of(outcome)
    assert invitation_part(call)[-1] == ("bob", "invitation.decline")
    assert commands_of(call.steps)[-1].fields["reason"] == reason
    assert not any(label.startswith("room.") for _, label in verbs(call))


def test_busy_against_an_engaged_callee_waits_for_whichever_happens():
    call = steps_of("busy", callee_engaged=True)
    assert verbs(call)[0] == ("ann", "invitation.send")
    either = call.steps[1]
    assert isinstance(either, Either)
    (busy, after_busy), (rang, after_ring) = either.cases
    assert busy == Await("onOutgoingCallRejectedCauseBusy", "ann") and after_busy == ()
    assert rang == Await("onIncomingCallReceived", "bob")
    declined = [command for command in after_ring if isinstance(command, Command)]
    assert [(c.label, c.fields.get("reason")) for c in declined] == [("invitation.received", None),
                                                                    ("invitation.decline", "busy")]


def test_cancel_comes_from_the_caller_well_before_the_timeout():
    for seed in range(30):
        call = steps_of("cancel", seed=seed)
        assert invitation_part(call)[-1] == ("ann", "invitation.cancel")
        pause = next(step for step in call.steps if isinstance(step, Pause))
        assert pause.seconds < TIMING.ring_timeout / 2
        assert call.steps[-1] == Await("onIncomingCallCanceled", "bob")


def test_timeout_waits_for_the_timer_and_expects_its_events():
    call = steps_of("timeout")
    awaited = [step for step in call.steps if isinstance(step, Await)]
    assert [(a.callback, a.recipient) for a in awaited[1:]] == [("onIncomingCallTimeout", "bob"),
                                                              ("onOutgoingCallTimeout", "ann")]
    assert awaited[-1].within > TIMING.ring_timeout
    assert call.timer_events == {"onIncomingCallTimeout": 1, "onOutgoingCallTimeout": 1,
                                 "onInvitationUserStateChanged": 1}
    assert not any(label in ("invitation.accept", "invitation.decline") for _, label in verbs(call))


def test_a_timed_out_callee_sometimes_opens_the_missed_call_without_dialing_back():
    clicks = [c for seed in range(40) for c in commands_of(steps_of("timeout", seed=seed).steps)
              if c.verb == "missed_call_click"]
    assert clicks and all(click.fields["dialBack"] is False and click.actor == "bob" for click in clicks)


def test_group_callees_answer_on_their_own_and_the_first_accepts():
    for seed in range(40):
        callees = ("bob", "cy", "dee", "eve")
        call = steps_of("group", callees=callees, seed=seed)
        answering = next(step for step in call.steps if isinstance(step, Together))
        assert len(answering.branches) == 4
        answers = {}
        for callee, branch in zip(callees, answering.branches):
            commands = [step for step in branch if isinstance(step, Command)]
            assert commands[0].label == "invitation.received" and commands[0].actor == callee
            answers[callee] = commands[1].verb if len(commands) > 1 else "silent"
        assert answers["bob"] == "accept"
        members = {"ann"} | {callee for callee, answer in answers.items() if answer == "accept"}
        joins = {actor for actor, label in verbs(call) if label == "room.join"}
        hang_ups = [actor for actor, label in verbs(call) if label == "room.hang_up"]
        assert joins == members and len(hang_ups) == len(members) - 1
        silent = list(answers.values()).count("silent")
        assert call.timer_events == timer_events(4, silent)
        assert (call.steps[-1] == Await("onOutgoingCallTimeout", "ann", TIMING.timer_wait)) == bool(silent)


def test_the_timer_tells_every_member_who_did_answer():
    assert timer_events(3, 0) == {}
    assert timer_events(3, 2) == {"onIncomingCallTimeout": 2, "onOutgoingCallTimeout": 1,
                                  "onInvitationUserStateChanged": 2}


def test_device_reports_are_valid_and_sometimes_carry_an_exception():
    reports = [c for seed in range(60) for c in commands_of(steps_of("accept", seed=seed).steps)
               if c.label == "device.report"]
    fields = {name for report in reports for name in report.fields if name != "user"}
    assert fields <= {"camera", "microphone", "audioRoute", "cameraException", "microphoneException"}
    assert {"camera", "audioRoute"} <= fields and fields & {"cameraException", "microphoneException"}


def test_every_outcome_has_a_script_and_answers_stay_within_the_ring_timeout():
    for outcome in OUTCOMES:
        for seed in range(20):
            call = steps_of(outcome, callees=("bob", "cy"), seed=seed)
            assert call.outcome == outcome and call.users[0] == "ann"
    rng = random.Random(3)
    assert all(TIMING.answer_delay(rng) < TIMING.ring_timeout * 0.5 for _ in range(200))


def test_the_same_seed_gives_the_same_script():
    assert steps_of("group", callees=("bob", "cy", "dee"), seed=9) == steps_of("group", callees=("bob", "cy", "dee"), seed=9)


def test_an_unknown_outcome_is_an_error():
    with pytest.raises(ValueError, match="unknown outcome 'hangup'"):
        steps_of("hangup")
