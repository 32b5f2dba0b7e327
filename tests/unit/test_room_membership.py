"""The room membership view: fed the lean decode of the log's bytes, it agrees with the full events."""

import random

import msgspec
import pytest

from schemas.enums import Source, ZegoRoomStateChangedReason as Reason
from schemas.events import StateChanged
from services.runtime.views import RoomMembership, decode_room_change


def state_changed(index: int, call_id: str, user_id: str, reason: Reason, extended: dict) -> StateChanged:
    return StateChanged(eventID=f"e{index}", callID=call_id, recipient=user_id, seq=index + 1,
                        occurredAt="2026-01-01T00:00:00.000Z", source=Source.room, causationID=f"c{index}",
                        reason=reason, extendedData=extended)


@pytest.mark.parametrize("seed", range(5))
def test_the_lean_decode_builds_the_same_membership_as_full_events(seed):
    chance = random.Random(seed)
    names = ["Ann", "", 7, None, "ü 日本", {"nested": 1}]
    events = [
        state_changed(index, chance.choice(["c1", "c2", "c3"]), chance.choice(["ann", "bob", "carol", "dan"]),
                      chance.choice(list(Reason)),
                      chance.choice([{}, {"room_session_id": "s"}, {"user_name": chance.choice(names), "x": [1]}]))
        for index in range(300)
    ]
    full, lean = RoomMembership(), RoomMembership()
    for event in events:
        full.apply(event)
        lean.apply_change(decode_room_change(msgspec.json.encode(event)))
        for call_id in ("c1", "c2", "c3"):
            assert lean.members(call_id) == full.members(call_id)
        for user_id in ("ann", "bob", "carol", "dan"):
            assert lean.in_a_room(user_id) == full.in_a_room(user_id)
    assert any(full.members(call_id) for call_id in ("c1", "c2", "c3"))


def test_who_is_in_a_room():
    rooms = RoomMembership()
    rooms.apply_change(decode_room_change(msgspec.json.encode(
        state_changed(0, "c1", "ann", Reason.Logined, {"user_name": "Ann"}))))
    assert [(user.id, user.name) for user in rooms.members("c1")] == [("ann", "Ann")] and rooms.in_a_room("ann")
    rooms.apply_change(decode_room_change(msgspec.json.encode(state_changed(1, "c1", "ann", Reason.ReconnectFailed, {}))))
    assert rooms.members("c1") == () and not rooms.in_a_room("ann")
