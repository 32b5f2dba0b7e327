"""The checker without a server: expected events vs what the live feed and the stream received."""

from ringlog.simulation.checker import Expectation, Seen, check

SENT = [Seen("e1", "onOutgoingCallSent", "c1"), Seen("e2", "onIncomingCallReceived", "c1")]
JOINED = [Seen("e3", "onStateChanged", "c1")]


def expectation() -> Expectation:
    expect = Expectation()
    expect.returned(["e1", "e2"], "invitation.send")
    expect.returned(["e3"], "room.join")
    return expect


def test_everything_once_on_both_sources_is_ok():
    verdict = check(expectation(), SENT + JOINED, SENT + JOINED)
    assert verdict.ok and verdict.events == 3
    total = verdict.totals
    assert (total.expected, total.stream, total.live, total.lost, total.duplicated, total.unexpected) == (3, 3, 3, 0, 0, 0)
    assert verdict.rows["onOutgoingCallSent"].expected == 1


def test_an_event_missing_from_the_stream_is_lost():
    verdict = check(expectation(), SENT, SENT + JOINED)
    assert not verdict.ok
    assert verdict.rows["onStateChanged"].lost == 1
    assert verdict.rows["onStateChanged"].live == 1 and verdict.rows["onStateChanged"].stream == 0


def test_an_event_missing_from_the_live_feed_is_lost():
    verdict = check(expectation(), SENT + JOINED, SENT)
    assert verdict.totals.lost == 1 and verdict.rows["onStateChanged"].lost == 1


def test_an_event_seen_nowhere_is_lost_under_the_command_that_returned_it():
    verdict = check(expectation(), SENT, SENT)
    assert verdict.rows["? (from room.join)"].lost == 1
    assert verdict.rows["? (from room.join)"].expected == 1
    assert verdict.totals.lost == 1


def test_an_event_twice_on_the_stream_or_live_is_duplicated():
    twice_on_stream = check(expectation(), SENT + JOINED + JOINED, SENT + JOINED)
    assert twice_on_stream.rows["onStateChanged"].duplicated == 1 and not twice_on_stream.ok
    twice_live = check(expectation(), SENT + JOINED, SENT + SENT[:1] + JOINED)
    assert twice_live.rows["onOutgoingCallSent"].duplicated == 1
    assert twice_live.totals.lost == 0 and twice_live.totals.duplicated == 1


def test_an_event_of_the_run_that_nothing_explains_is_unexpected():
    stray = [Seen("x9", "onCallEnd", "c1")]
    verdict = check(expectation(), SENT + JOINED + stray, SENT + JOINED + stray)
    assert verdict.rows["onCallEnd"].unexpected == 1 and not verdict.ok


TIMER = {"onIncomingCallTimeout": 1, "onOutgoingCallTimeout": 1, "onInvitationUserStateChanged": 1}
TIMED_OUT = [Seen("t1", "onIncomingCallTimeout", "c1"), Seen("t2", "onOutgoingCallTimeout", "c1"),
             Seen("t3", "onInvitationUserStateChanged", "c1")]


def test_timer_events_are_counted_per_call_and_callback():
    expect = expectation()
    expect.timer("c1", TIMER)
    verdict = check(expect, SENT + JOINED + TIMED_OUT, SENT + JOINED + TIMED_OUT)
    assert verdict.ok and verdict.totals.expected == 6
    short = check(expect, SENT + JOINED + TIMED_OUT[:2], SENT + JOINED + TIMED_OUT[:2])
    assert short.rows["onInvitationUserStateChanged"].lost == 1 and not short.ok
    extra = TIMED_OUT + [Seen("t4", "onOutgoingCallTimeout", "c1")]
    too_many = check(expect, SENT + JOINED + extra, SENT + JOINED + extra)
    assert too_many.rows["onOutgoingCallTimeout"].unexpected == 1


def test_timer_events_of_another_call_do_not_count():
    expect = expectation()
    expect.timer("c1", TIMER)
    elsewhere = [Seen(s.event_id, s.callback, "c2") for s in TIMED_OUT]
    verdict = check(expect, SENT + JOINED + elsewhere, SENT + JOINED + elsewhere)
    assert verdict.totals.lost == 3 and verdict.totals.unexpected == 3


def test_a_refused_command_may_or_may_not_have_written_an_on_error():
    expect = expectation()
    expect.refused("c1")
    assert check(expect, SENT + JOINED, SENT + JOINED).ok
    error = [Seen("r1", "onError", "c1")]
    verdict = check(expect, SENT + JOINED + error, SENT + JOINED + error)
    assert verdict.ok and verdict.rows["onError"].expected == 1
    two = error + [Seen("r2", "onError", "c1")]
    assert check(expect, SENT + JOINED + two, SENT + JOINED + two).rows["onError"].unexpected == 1


def test_a_timer_event_lost_from_one_source_is_lost():
    expect = expectation()
    expect.timer("c1", TIMER)
    verdict = check(expect, SENT + JOINED + TIMED_OUT, SENT + JOINED + TIMED_OUT[1:])
    assert verdict.rows["onIncomingCallTimeout"].lost == 1


def test_the_expectation_total_counts_ids_and_timer_events():
    expect = expectation()
    expect.timer("c1", TIMER)
    expect.refused("c1")
    assert expect.total == 6
