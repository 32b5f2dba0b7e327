"""What happens in one call, per outcome: a pure description, no I/O.

A script is a tuple of steps that the driver plays in order:

- `Command`  one user's client sends a command (the driver adds commandID and callID)
- `Await`    a client waits until a callback reaches it on the live event log
- `Pause`    a user thinks, lets it ring, or talks
- `Together` branches played at the same time (callees answering, members joining)
- `Either`   whichever awaited event comes first decides the next steps

`plan(outcome, ...)` builds the `Call`: its steps and the events that no command reply
returns (the invitation timer's), so the checker knows to count them.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Union

EXCEPTIONS = ("generic", "permissionNotGranted", "deviceOccupied", "deviceUnplugged", "interruption", "inBackground")
AUDIO_ROUTES = ("speaker", "headphone", "bluetooth", "receiver")


@dataclass(frozen=True)
class Command:
    actor: str
    service: str
    verb: str
    fields: Mapping[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.service}.{self.verb}"


@dataclass(frozen=True)
class Await:
    callback: str
    recipient: str
    within: float = 5.0


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Together:
    branches: tuple[tuple["Step", ...], ...]


@dataclass(frozen=True)
class Either:
    cases: tuple[tuple[Await, tuple["Step", ...]], ...]


Step = Union[Command, Await, Pause, Together, Either]


@dataclass(frozen=True)
class Timing:
    ring_timeout: int = 3  # timeoutSeconds of every invitation
    answer: tuple[float, float] = (0.1, 0.8)  # how long a callee lets it ring before answering
    talk: tuple[float, float] = (0.5, 3.0)  # how long a call lasts once everyone joined

    def answer_delay(self, rng: random.Random) -> float:
        low, high = self.answer
        return rng.uniform(low, min(high, self.ring_timeout * 0.4))

    def cancel_delay(self, rng: random.Random) -> float:
        return rng.uniform(0.1, self.ring_timeout / 3)

    def talk_time(self, rng: random.Random) -> float:
        return rng.uniform(*self.talk)

    @property
    def timer_wait(self) -> float:
        return self.ring_timeout + 5.0


@dataclass(frozen=True)
class Call:
    call_id: str
    outcome: str
    caller: str
    callees: tuple[str, ...]
    steps: tuple[Step, ...]
    timer_events: Mapping[str, int] = field(default_factory=dict)  # callback -> count, written by the timer

    @property
    def users(self) -> tuple[str, ...]:
        return (self.caller, *self.callees)


def _user(user_id: str) -> dict:
    return {"id": user_id, "name": user_id}


def send(caller: str, callees: tuple[str, ...], call_type: str, timing: Timing) -> Command:
    return Command(caller, "invitation", "send", {
        "caller": _user(caller), "callees": [_user(callee) for callee in callees], "callType": call_type,
        "customData": "", "timeoutSeconds": timing.ring_timeout})


def answer(callee: str, verb: str, **fields: object) -> Command:
    return Command(callee, "invitation", verb, {"callee": _user(callee), **fields})


def rings(callee: str) -> tuple[Step, ...]:
    """The callee's phone rings and its client acknowledges."""
    return (Await("onIncomingCallReceived", callee), answer(callee, "received"))


def device_reports(member: str, video: bool, rng: random.Random) -> tuple[Step, ...]:
    """A report or two: devices on joining, then maybe a route change or (rarely) an exception."""
    steps: list[Step] = [Command(member, "device", "report", {"user": _user(member), "camera": video, "microphone": True})]
    roll = rng.random()
    if roll < 0.1:
        device = rng.choice(("cameraException", "microphoneException"))
        steps.append(Command(member, "device", "report", {"user": _user(member), device: rng.choice(EXCEPTIONS)}))
    elif roll < 0.6:
        steps.append(Command(member, "device", "report", {"user": _user(member), "audioRoute": rng.choice(AUDIO_ROUTES)}))
    return tuple(steps)


def in_the_room(members: tuple[str, ...], video: bool, rng: random.Random, timing: Timing) -> tuple[Step, ...]:
    """Everyone joins, reports devices, talks; then members hang up until one is left (who gets remoteHangUp)."""
    joins = Together(tuple((Command(member, "room", "join", {"user": _user(member)}),) for member in members))
    reports = Together(tuple(device_reports(member, video, rng) for member in members))
    leavers = rng.sample(members, len(members) - 1)
    hang_ups = tuple(Command(member, "room", "hang_up", {"user": _user(member)}) for member in leavers)
    return (joins, reports, Pause(timing.talk_time(rng)), *hang_ups)


def timer_events(callees: int, silent: int) -> dict[str, int]:
    """What the invitation timer writes when `silent` of `callees` (all reached) never answered."""
    if not silent:
        return {}
    return {"onIncomingCallTimeout": silent, "onOutgoingCallTimeout": 1,
            "onInvitationUserStateChanged": 1 + callees - silent}


def plan(outcome: str, call_id: str, caller: str, callees: tuple[str, ...], rng: random.Random,
         timing: Timing, *, callee_engaged: bool = False) -> Call:
    """The script of one call. `callee_engaged` (busy only): the callee is in another call now."""
    video = rng.random() < 0.5
    call_type = "videoCall" if video else "voiceCall"
    steps: tuple[Step, ...] = (send(caller, callees, call_type, timing),)
    timers: dict[str, int] = {}
    if outcome == "group":
        return _group(call_id, caller, callees, video, rng, timing, steps)
    callee = callees[0]
    if outcome == "busy" and callee_engaged:
        # The server says busy at once, unless the callee just came free: then it rings and the
        # callee's client, still in its other call, declines with reason busy.
        declines = (*rings(callee)[1:], Pause(timing.answer_delay(rng)), answer(callee, "decline", reason="busy"))
        steps += (Either(((Await("onOutgoingCallRejectedCauseBusy", caller), ()),
                          (Await("onIncomingCallReceived", callee), declines))),)
        return Call(call_id, outcome, caller, callees, steps)
    steps += rings(callee)
    if outcome == "accept":
        steps += (Pause(timing.answer_delay(rng)), answer(callee, "accept"), Await("onOutgoingCallAccepted", caller),
                  *in_the_room((caller, callee), video, rng, timing))
    elif outcome in ("decline", "busy"):
        reason = "busy" if outcome == "busy" else "decline"
        steps += (Pause(timing.answer_delay(rng)), answer(callee, "decline", reason=reason))
    elif outcome == "cancel":
        steps += (Pause(timing.cancel_delay(rng)), Command(caller, "invitation", "cancel", {"caller": _user(caller)}),
                  Await("onIncomingCallCanceled", callee))
    elif outcome == "timeout":
        steps += (Await("onIncomingCallTimeout", callee, timing.timer_wait),
                  Await("onOutgoingCallTimeout", caller, timing.timer_wait))
        if rng.random() < 0.3:  # the callee opens the missed call (without dialing back)
            steps += (Command(callee, "invitation", "missed_call_click", {"user": _user(callee), "dialBack": False}),)
        timers = timer_events(1, 1)
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    return Call(call_id, outcome, caller, callees, steps, timers)


def _group(call_id: str, caller: str, callees: tuple[str, ...], video: bool, rng: random.Random, timing: Timing,
           steps: tuple[Step, ...]) -> Call:
    """Each callee answers on its own: the first accepts, the others accept, decline or let it ring."""
    choices = ["accept"] + rng.choices(["accept", "decline", "silent"], weights=[60, 25, 15], k=len(callees) - 1)
    branches = []
    for callee, choice in zip(callees, choices):
        branch = rings(callee)
        if choice != "silent":
            branch += (Pause(timing.answer_delay(rng)), answer(callee, choice))
        branches.append(branch)
    members = (caller, *(callee for callee, choice in zip(callees, choices) if choice == "accept"))
    steps += (Together(tuple(branches)), *in_the_room(members, video, rng, timing))
    silent = Counter(choices)["silent"]
    if silent:  # the caller is told once the silent callees time out
        steps += (Await("onOutgoingCallTimeout", caller, timing.timer_wait),)
    return Call(call_id, "group", caller, callees, steps, timer_events(len(callees), silent))


def commands_of(steps: tuple[Step, ...]) -> list[Command]:
    """Every command a script may send (both cases of an Either), in order: for tests and summaries."""
    found: list[Command] = []
    for step in steps:
        if isinstance(step, Command):
            found.append(step)
        elif isinstance(step, Together):
            for branch in step.branches:
                found += commands_of(branch)
        elif isinstance(step, Either):
            for _, branch in step.cases:
                found += commands_of(branch)
    return found
