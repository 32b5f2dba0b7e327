"""A few hundred mixed calls through the services and the log; a rebuild from sequence 1 is identical."""

import asyncio
import io
import random

import nats
import pytest

from projections import synthetic as syn
from projections.rebuild import rebuild_into, run_rebuild
from projections.synthetic import mixed_calls, publish_events
from schemas.subjects import Subjects
from schemas.types import User
from tests.integration.harness import token
from tests.integration.test_projection_helpers import (
    available, caught_up, dump_file, live_file, query, start_projector,
)

ROOM, DEVICE = available("services.room.main"), available("services.device.main")
KINDS = ("accept", "decline", "busy", "cancel", "timeout", "group")


def user(name: str) -> dict:
    return {"id": name, "name": name.upper()}


async def drive_invitation(client, index: int) -> tuple[str, list[dict]]:
    """One call through the invitation service; returns its kind and who should meet in the room."""
    kind = KINDS[index % len(KINDS)]
    call_id, caller = f"svc-{index}", user(f"c{index}")
    callees = [user(f"d{index}"), user(f"e{index}"), user(f"f{index}")] if kind == "group" else [user(f"d{index}")]
    timeout = 1 if kind in ("timeout", "group") else 60
    send = {"caller": caller, "callees": callees, "callType": "voiceCall", "callID": call_id, "timeoutSeconds": timeout}
    await client.command("invitation", "send", send, token(caller["id"]))

    async def callee(verb: str, who: dict, **extra) -> None:
        await client.command("invitation", verb, {"callID": call_id, "callee": who, **extra}, token(who["id"]))

    await callee("received", callees[0])
    if kind in ("accept", "group"):
        await callee("accept", callees[0])
    if kind == "group":
        await callee("decline", callees[1])
    if kind in ("decline", "busy"):
        await callee("decline", callees[0], reason="busy" if kind == "busy" else "decline")
    if kind == "cancel":
        await client.command("invitation", "cancel", {"callID": call_id, "caller": caller}, token(caller["id"]))
    return kind, [caller, callees[0]] if kind in ("accept", "group") else []


async def meet_in_room(client, nc, subjects, index: int, people: list[dict]) -> None:
    """The caller and the callee who accepted join, report devices, and hang up: through the room and
    device services when they exist, else as the events those services publish."""
    call_id = f"svc-{index}"
    if ROOM:
        for person in people:
            await client.command("room", "join", {"callID": call_id, "user": person}, token(person["id"]))
    if DEVICE:
        reporter = people[1]
        await client.command("device", "report", {"callID": call_id, "user": reporter, "camera": True,
                                                  "cameraException": "deviceOccupied"}, token(reporter["id"]))
    if ROOM:
        await client.command("room", "hang_up", {"callID": call_id, "user": people[0]}, token(people[0]["id"]))
    if ROOM and DEVICE:
        return
    s, room = syn.CallScript(call_id, syn.START, random.Random(index)), []
    users = [User(id=p["id"], name=p["name"]) for p in people]
    if not ROOM:
        syn.join(s, users[0], room), syn.join(s, users[1], room)
    if not DEVICE:
        syn.devices(s, users[1], users)
    if not ROOM:
        syn.hang_up(s, users[0], room)
    await publish_events(nc, subjects, s.events)


async def settled(nc, quiet: float = 0.4) -> int:
    """The stream's last sequence once it stopped growing (timeouts and relays have published)."""
    js, last = nc.jetstream(), -1
    while True:
        now = (await js.stream_info("RINGLOG_EVENTS")).state.last_seq
        if now == last:
            return now
        last = now
        await asyncio.sleep(quiet)


@pytest.fixture
async def world(services, settings, client):
    names = ["invitation"] + (["room"] if ROOM else []) + (["device"] if DEVICE else [])
    await services(*names)
    projector = await start_projector(settings)
    nc = await nats.connect(settings.nats_url)
    yield projector, nc
    await nc.close()
    await projector.shutdown()


async def test_rebuild_from_sequence_one_equals_the_live_read_models(world, settings, client, tmp_path):
    projector, nc = world
    subjects = Subjects(settings.prefix)
    driven = []
    for start in range(0, 240, 40):
        driven += await asyncio.gather(*(drive_invitation(client, index) for index in range(start, start + 40)))
    await publish_events(nc, subjects, mixed_calls(100, seed=5, prefix="direct"))
    await asyncio.gather(*(meet_in_room(client, nc, subjects, index, people)
                           for index, (kind, people) in enumerate(driven) if people))
    await asyncio.sleep(1.2)  # the 1 s invitations time out
    last = await settled(nc)
    lag = await caught_up(nc)
    assert (lag["position"], lag["lagEvents"], lag["lagSeconds"]) == (last, 0, 0.0)

    rebuilt = await rebuild_into(nc, subjects, tmp_path / "fresh.sqlite")
    assert rebuilt.position == last and rebuilt.events == last
    live, fresh = dump_file(live_file(settings)), dump_file(tmp_path / "fresh.sqlite")
    assert len(live["calls"]) == 340 and len(live["timeline"]) == last
    assert live == fresh

    outcomes = {}
    for index in range(240):
        _, call = await query(nc, "call", {"callID": f"svc-{index}"})
        outcomes.setdefault(KINDS[index % len(KINDS)], set()).add(call["outcome"])
    assert outcomes == {"accept": {"answered"}, "decline": {"declined"}, "busy": {"busy"}, "cancel": {"canceled"},
                        "timeout": {"missed"}, "group": {"answered"}}
    _, missed = await query(nc, "missed", {"userID": "f5"})  # the group callee who never answered
    assert [item["call"]["callID"] for item in missed["calls"]] == ["svc-5"]
    _, history = await query(nc, "history", {"userID": "c0"})
    assert [(item["role"], item["call"]["callID"]) for item in history["calls"]] == [("caller", "svc-0")]


async def test_rebuild_command_swaps_into_the_running_projector(world, settings, client):
    projector, nc = world
    subjects = Subjects(settings.prefix)
    await publish_events(nc, subjects, mixed_calls(30, seed=8))
    await caught_up(nc)
    before = dump_file(live_file(settings))
    out = io.StringIO()
    assert await run_rebuild(settings, out) == 0, out.getvalue()
    assert "the running projector swapped in the rebuilt file" in out.getvalue() and "100.0%" in out.getvalue()
    assert not list(settings.data_dir.glob("projections.rebuilt-*"))
    assert dump_file(live_file(settings)) == before

    await publish_events(nc, subjects, mixed_calls(10, seed=9, prefix="after"))  # it goes on after the swap
    lag = await caught_up(nc)
    assert lag["lagEvents"] == 0
    status, call = await query(nc, "call", {"callID": "after-9-3"})
    assert status is None and call["outcome"] == "canceled"


async def test_rebuild_without_a_projector_renames_the_file_itself(settings, nats_server, tmp_path):
    nc = await nats.connect(settings.nats_url)
    try:
        from services.runtime.bus import ensure_stream

        await ensure_stream(nc.jetstream(), Subjects(settings.prefix))
        await publish_events(nc, Subjects(settings.prefix), mixed_calls(20, seed=4))
        out = io.StringIO()
        assert await run_rebuild(settings, out) == 0
        assert "no projector was running" in out.getvalue()
        projector = await start_projector(settings)  # it starts from the rebuilt file's position
        try:
            lag = await caught_up(nc)
            assert lag["lagEvents"] == 0 and lag["position"] == len(dump_file(live_file(settings))["timeline"])
        finally:
            await projector.shutdown()
    finally:
        await nc.close()


async def test_rebuild_of_an_empty_log(settings, nats_server):
    nc = await nats.connect(settings.nats_url)
    try:
        from services.runtime.bus import ensure_stream

        await ensure_stream(nc.jetstream(), Subjects(settings.prefix))
        out = io.StringIO()
        assert await run_rebuild(settings, out) == 0, out.getvalue()
        assert "rebuilt 0 events" in out.getvalue()
        assert all(rows == [] for rows in dump_file(live_file(settings)).values())
    finally:
        await nc.close()
