"""The driver and the user pool without a server: a fake client and a fake live feed."""

import random
from dataclasses import dataclass, field

import pytest

from ringlog.client import Conflict, ServiceUnavailable
from ringlog.simulation.checker import Expectation
from ringlog.simulation.driver import Driver, Stats
from ringlog.simulation.pool import UserPool
from ringlog.simulation.scripts import Timing, plan

TIMING = Timing(ring_timeout=2, answer=(0.0, 0.0), talk=(0.0, 0.0))


@dataclass
class FakeClient:
    """Answers each command with two new eventIDs, or with the queued exceptions first."""

    failures: dict = field(default_factory=dict)  # verb -> list of exceptions to raise, in order
    sent: list = field(default_factory=list)

    async def command(self, service, verb, payload, token):
        self.sent.append((service, verb, payload, token))
        queued = self.failures.get(verb)
        if queued:
            raise queued.pop(0)
        return {"callID": payload["callID"], "eventIDs": [f"{payload['commandID']}/a", f"{payload['commandID']}/b"]}


@dataclass
class FakeFeed:
    """Every awaited event has arrived, except the `missing` (callback, recipient) pairs."""

    missing: set = field(default_factory=set)

    async def wait(self, call_id, callback, recipient, within):
        return (callback, recipient) not in self.missing

    async def first(self, call_id, wanted, within):
        return next((index for index, pair in enumerate(wanted) if pair not in self.missing), None)


def driver(client=None, feed=None):
    stats, expect = Stats(), Expectation()
    return Driver(client or FakeClient(), lambda user: f"token-of-{user}", feed or FakeFeed(), stats, expect), stats, expect


def call(outcome, callees=("bob",), **options):
    return plan(outcome, "c1", "ann", callees, random.Random(5), TIMING, **options)


async def test_a_played_call_sends_each_command_as_its_user_and_expects_every_returned_event():
    client = FakeClient()
    play, stats, expect = driver(client)
    assert await play.play(call("decline"))
    assert [(verb, token) for _, verb, _, token in client.sent] == [
        ("send", "token-of-ann"), ("received", "token-of-bob"), ("decline", "token-of-bob")]
    assert all(payload["callID"] == "c1" for _, _, payload, _ in client.sent)
    assert len({payload["commandID"] for _, _, payload, _ in client.sent}) == 3
    assert len(expect.by_id) == 6 and set(expect.by_id.values()) == {"invitation.send", "invitation.received",
                                                                     "invitation.decline"}
    assert stats.commands == 3 and len(stats.latencies) == 3 and stats.error_count == 0


async def test_a_timed_out_call_expects_the_timer_events_once_the_send_is_answered():
    play, _, expect = driver()
    assert await play.play(call("timeout"))
    assert expect.counted[("c1", "onOutgoingCallTimeout")] == [1, 1]


async def test_a_refused_command_is_an_error_stops_the_call_and_allows_an_on_error():
    client = FakeClient(failures={"accept": [Conflict(409, "invitation_timed_out", "too late")]})
    play, stats, expect = driver(client)
    assert not await play.play(call("accept"))
    assert [verb for _, verb, _, _ in client.sent] == ["send", "received", "accept"]  # nobody joins
    assert stats.errors == {"invitation.accept 409 invitation_timed_out": 1}
    assert expect.counted[("c1", "onError")] == [0, 1]
    assert stats.examples["invitation.accept 409 invitation_timed_out"] == "call c1: too late"


async def test_a_command_nobody_answered_is_retried_with_the_same_command_id():
    client = FakeClient(failures={"received": [ServiceUnavailable("no answer")]})
    play, stats, _ = driver(client)
    assert await play.play(call("cancel"))
    received = [payload["commandID"] for _, verb, payload, _ in client.sent if verb == "received"]
    assert len(received) == 2 and received[0] == received[1]
    assert stats.retries == 1 and stats.error_count == 0


async def test_a_command_that_stays_unanswered_is_an_error():
    client = FakeClient(failures={"send": [ServiceUnavailable("down")] * 3})
    play, stats, _ = driver(client)
    assert not await play.play(call("accept"))
    assert stats.errors == {"invitation.send unavailable": 1}


async def test_an_event_that_never_arrives_is_an_error():
    play, stats, _ = driver(feed=FakeFeed(missing={("onIncomingCallReceived", "bob")}))
    assert not await play.play(call("decline"))
    assert stats.errors == {"event not seen": 1}
    assert "onIncomingCallReceived for bob" in stats.examples["event not seen"]


async def test_busy_follows_whichever_event_came_first():
    client = FakeClient()
    play, _, _ = driver(client)  # the busy event has arrived: nothing more to do
    assert await play.play(call("busy", callee_engaged=True))
    assert [verb for _, verb, _, _ in client.sent] == ["send"]
    client = FakeClient()
    play, _, _ = driver(client, FakeFeed(missing={("onOutgoingCallRejectedCauseBusy", "ann")}))
    assert await play.play(call("busy", callee_engaged=True))  # it rang: the callee declines busy
    assert [(verb, payload.get("reason")) for _, verb, payload, _ in client.sent] == [
        ("send", None), ("received", None), ("decline", "busy")]


async def test_a_group_plays_its_callees_together_and_stops_when_one_fails():
    client = FakeClient(failures={"received": [Conflict(409, "call_canceled", "x")]})
    play, stats, _ = driver(client)
    assert not await play.play(call("group", callees=("bob", "cy", "dee")))
    assert not any(verb == "join" for _, verb, _, _ in client.sent)
    assert stats.error_count == 1


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_the_pool_holds_users_in_a_call_and_frees_them_after_the_cool_down():
    clock = Clock()
    pool = UserPool(["a", "b", "c"], cooldown=0.5, clock=clock)
    rng = random.Random(1)
    taken = pool.take(2, rng)
    assert len(set(taken)) == 2 and pool.free == 1 and pool.in_calls == 2
    assert pool.take(2, rng) is None and pool.free == 1  # nothing held on a refusal
    pool.release(taken)
    assert pool.free == 1  # cooling down
    clock.now = 0.6
    assert pool.free == 3


def test_the_pool_offers_an_engaged_user_for_busy_and_keeps_it_until_both_calls_end():
    clock = Clock()
    pool = UserPool(["a", "b", "c"], cooldown=0.0, clock=clock)
    rng = random.Random(1)
    assert pool.engaged(rng) is None
    first = pool.take(2, rng)
    caller = pool.take(1, rng)
    target = pool.engaged(rng, besides=tuple(caller))
    assert target in first
    pool.release(first)
    assert target not in pool.idle and pool.free == 1
    pool.release(caller + [target])
    assert pool.free == 3


def test_the_pool_sets_aside_users_of_a_failed_call_and_gives_back_unused_ones():
    pool = UserPool(["a", "b", "c"], cooldown=0.0, clock=Clock())
    rng = random.Random(2)
    failed = pool.take(2, rng)
    pool.release(failed, failed=True)
    assert pool.free == 1
    spare = pool.take(1, rng)
    pool.give_back(spare)
    assert pool.free == 1 and pool.in_calls == 0


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_pool_takes_distinct_users(count):
    pool = UserPool([f"u{n}" for n in range(5)], clock=Clock())
    taken = pool.take(count, random.Random(count))
    assert len(set(taken)) == count
