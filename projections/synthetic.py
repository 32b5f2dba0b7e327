"""Well-formed call events as the three services write them, for tests and `ringlog bench replay`.

Each scenario stamps one call's events the way the services do (per-aggregate `seq`:
per call for invitation and room, per (call, reporting user) for the device-monitor;
time moving forward), so the projections see exactly what the services would publish.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from schemas import events as ev
from schemas.enums import Source
from schemas.types import InvitationUserInfo, User
from services.runtime.domain import timestamp

START = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


class CallScript:
    """Stamps the events of one call."""

    def __init__(self, call_id: str, start: datetime, rng: random.Random):
        self.call_id, self.now, self.rng = call_id, start, rng
        self.events: list[ev.Event] = []
        self._seqs: dict[tuple, int] = defaultdict(int)
        self.session = uuid.UUID(int=rng.getrandbits(128)).hex

    def tick(self, low_ms: int = 50, high_ms: int = 3000) -> None:
        self.now += timedelta(milliseconds=self.rng.randint(low_ms, high_ms))

    def emit(self, cls: type[ev.Event], recipient: str, source: Source, key: tuple, **payload) -> None:
        self._seqs[key] += 1
        event = cls(eventID=uuid.UUID(int=self.rng.getrandbits(128)).hex, callID=self.call_id, recipient=recipient,
                    seq=self._seqs[key], occurredAt=timestamp(self.now), source=source,
                    causationID=uuid.UUID(int=self.rng.getrandbits(128)).hex, **payload)
        self.events.append(ev.decode_event(ev.encode_event(event)))  # validated, enums as the log has them

    def invitation(self, cls, recipient: str, **payload) -> None:
        self.emit(cls, recipient, Source.invitation, ("invitation",), **payload)

    def room(self, cls, recipient: str, **payload) -> None:
        self.emit(cls, recipient, Source.room, ("room",), **payload)

    def device(self, cls, reporter: User, recipient: str, **payload) -> None:
        self.emit(cls, recipient, Source.device_monitor, ("device", reporter.id), **payload)


# --- invitation steps ---------------------------------------------------------------------


def send(s: CallScript, caller: User, callees: list[User], busy: tuple[str, ...] = (), timeout: int = 60) -> None:
    s.invitation(ev.OutgoingCallSent, caller.id, caller=caller, callees=callees, callType="videoCall",
                 customData=f"data-{s.call_id}", timeoutSeconds=timeout)
    for callee in callees:
        if callee.id not in busy:
            s.invitation(ev.IncomingCallReceived, callee.id, caller=caller, callType="videoCall", callees=callees,
                         customData=f"data-{s.call_id}")
    for callee in callees:
        if callee.id in busy:
            s.invitation(ev.OutgoingCallRejectedCauseBusy, caller.id, callee=callee)


def _tell(s: CallScript, members: list[User], subject: User, state: str, extended: str = "") -> None:
    infos = [InvitationUserInfo(userID=subject.id, state=state, extendedData=extended)]
    for member in members:
        if member.id != subject.id:
            s.invitation(ev.InvitationUserStateChanged, member.id, userInfos=infos)


def accept(s: CallScript, caller: User, callee: User, members: list[User]) -> None:
    s.tick()
    s.invitation(ev.IncomingCallAcceptButtonPressed, callee.id)
    s.invitation(ev.OutgoingCallAccepted, caller.id, callee=callee)
    _tell(s, members, callee, "accepted")


def decline(s: CallScript, caller: User, callee: User, members: list[User], busy: bool = False) -> None:
    s.tick()
    if busy:
        s.invitation(ev.OutgoingCallRejectedCauseBusy, caller.id, callee=callee)
        _tell(s, members, callee, "rejected", "busy")
        return
    s.invitation(ev.IncomingCallDeclineButtonPressed, callee.id)
    s.invitation(ev.OutgoingCallDeclined, caller.id, callee=callee)
    _tell(s, members, callee, "rejected")


def cancel(s: CallScript, caller: User, ringing: list[User]) -> None:
    s.tick()
    s.invitation(ev.OutgoingCallCancelButtonPressed, caller.id)
    for callee in ringing:
        s.invitation(ev.IncomingCallCanceled, callee.id, caller=caller)
        s.invitation(ev.InvitationUserStateChanged, callee.id,
                     userInfos=[InvitationUserInfo(userID=caller.id, state="cancelled")])


def time_out(s: CallScript, caller: User, ringing: list[User], members: list[User]) -> None:
    s.tick(1000, 5000)
    for callee in ringing:
        s.invitation(ev.IncomingCallTimeout, callee.id, caller=caller)
    s.invitation(ev.OutgoingCallTimeout, caller.id, callees=ringing, isVideoCall=True)
    infos = [InvitationUserInfo(userID=callee.id, state="timeout") for callee in ringing]
    for member in members:
        if member not in ringing:
            s.invitation(ev.InvitationUserStateChanged, member.id, userInfos=infos)


# --- room and device steps ----------------------------------------------------------------


def join(s: CallScript, user: User, present: list[User]) -> None:
    s.tick()
    s.room(ev.StateChanged, user.id, reason="Logining")
    s.room(ev.StateChanged, user.id, reason="Logined",
           extendedData={"room_session_id": s.session, "user_name": user.name})
    for member in present:
        s.room(ev.Enter, user.id, user=member)
    for member in present:
        s.room(ev.Enter, member.id, user=user)
    present.append(user)


def _departure(s: CallScript, leaver: User, present: list[User]) -> None:
    present.remove(leaver)
    for member in present:
        s.room(ev.Leave, member.id, user=leaver)
    if len(present) == 1:
        last = present.pop()
        s.room(ev.CallEnd, last.id, reason="remoteHangUp")
        s.room(ev.StateChanged, last.id, reason="Logout")


def hang_up(s: CallScript, user: User, present: list[User]) -> None:
    s.tick(1000, 60000)
    s.room(ev.HangUpConfirmation, user.id, confirmed=True)
    s.room(ev.StateChanged, user.id, reason="Logout")
    s.room(ev.CallEnd, user.id, reason="localHangUp")
    _departure(s, user, present)


def kick(s: CallScript, kicker: User, target: User, present: list[User]) -> None:
    s.tick(1000, 30000)
    s.room(ev.CallEnd, target.id, reason="kickOut", kickerUserID=kicker.id)
    s.room(ev.StateChanged, target.id, reason="Logout")
    _departure(s, target, present)


def abandon(s: CallScript, present: list[User]) -> None:
    s.tick(3000, 10000)
    for member in list(present):
        s.room(ev.CallEnd, member.id, reason="abandoned")
        s.room(ev.StateChanged, member.id, reason="Logout")
    present.clear()


def devices(s: CallScript, user: User, present: list[User]) -> None:
    s.tick(100, 2000)
    s.device(ev.CameraStateChanged, user, user.id, isOpened=s.rng.random() < 0.7)
    s.device(ev.MicrophoneStateChanged, user, user.id, isOpened=True)
    s.device(ev.AudioOutputChanged, user, user.id, audioRoute=s.rng.choice(["speaker", "headphone", "bluetooth"]))
    if s.rng.random() < 0.3:
        exception = s.rng.choice(["permissionNotGranted", "deviceOccupied", "zeroCaptureFps"])
        s.device(ev.LocalCameraExceptionOccurred, user, user.id, exception=exception)
        for member in present:
            if member.id != user.id:
                s.device(ev.RemoteCameraExceptionOccurred, user, member.id, user=user, exception=exception)


# --- whole calls ----------------------------------------------------------------------------

OUTCOMES = ("answered", "declined", "busy", "canceled", "missed", "abandoned", "group", "room_only", "ringing",
            "talking")  # the last two are still going on


def call_events(call_id: str, kind: str, users: list[User], start: datetime, rng: random.Random) -> list[ev.Event]:
    """The events of one call of `kind` (one of OUTCOMES) between users picked from `users`."""
    s = CallScript(call_id, start, rng)
    caller, *callees = rng.sample(users, 4 if kind == "group" else 2)
    members = [caller, *callees]
    room: list[User] = []
    if kind == "room_only":
        join(s, caller, room), join(s, callees[0], room), devices(s, caller, room), hang_up(s, caller, room)
        return s.events
    send(s, caller, callees, busy=tuple(c.id for c in callees) if kind == "busy" else ())
    if kind == "declined":
        decline(s, caller, callees[0], members)
    elif kind == "canceled":
        cancel(s, caller, callees)
    elif kind == "missed":
        time_out(s, caller, callees, members)
    elif kind in ("answered", "abandoned", "talking"):
        accept(s, caller, callees[0], members)
        join(s, caller, room)
        if kind == "abandoned":
            abandon(s, room)
        else:
            join(s, callees[0], room), devices(s, callees[0], room), devices(s, caller, room)
            if kind == "answered":
                hang_up(s, caller, room)
    elif kind == "group":
        accept(s, caller, callees[0], members), decline(s, caller, callees[1], members)
        time_out(s, caller, [callees[2]], members)
        join(s, caller, room), join(s, callees[0], room), devices(s, caller, room)
        kick(s, caller, callees[0], room)
    return s.events


def mixed_calls(count: int, *, seed: int = 1, users: int = 40, prefix: str = "call",
                start: datetime = START) -> list[ev.Event]:
    """`count` calls of every kind, overlapping in time, merged into one log order."""
    rng = random.Random(seed)
    pool = [User(id=f"user{index}", name=f"User {index}") for index in range(users)]
    calls = [call_events(f"{prefix}-{seed}-{index}", OUTCOMES[index % len(OUTCOMES)], pool,
                         start + timedelta(milliseconds=index * 700), rng) for index in range(count)]
    merged = [event for events in calls for event in events]
    merged.sort(key=lambda event: event.occurredAt)  # stable: a call's own order is kept
    return merged


async def publish_events(nc, subjects, event_list: list[ev.Event], chunk: int = 1000) -> None:
    """Publish as the relays do (Nats-Msg-Id = eventID), without waiting on each ack, then
    wait until the stream holds them all."""
    from schemas.events import encode_event
    from schemas.subjects import STREAM_NAME

    js = nc.jetstream()
    target = (await js.stream_info(STREAM_NAME)).state.last_seq + len(event_list)
    for index, event in enumerate(event_list, 1):
        await nc.publish(subjects.event(event), encode_event(event), headers={"Nats-Msg-Id": event.eventID})
        if index % chunk == 0:
            await nc.flush()
    await nc.flush()
    for _ in range(600):
        if (await js.stream_info(STREAM_NAME)).state.last_seq >= target:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the stream did not reach sequence {target}")
