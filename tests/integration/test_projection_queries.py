"""ringlog.query.* over NATS (no token), the error mapping, lag and /metrics, and the CLI wiring."""

import argparse
import asyncio
import urllib.request

import nats
import pytest

from projections.cli import register
from projections.synthetic import mixed_calls, publish_events
from ringlog.natsserver import free_port
from schemas.subjects import Subjects
from tests.integration.harness import token
from tests.integration.test_projection_helpers import caught_up, query, start_projector

ALICE, BOB = {"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}


@pytest.fixture
async def running(services, settings):
    await services("invitation")
    settings.metrics_port = free_port()  # the projector's own /metrics port
    projector = await start_projector(settings)
    nc = await nats.connect(settings.nats_url)
    yield nc
    await nc.close()
    await projector.shutdown()


async def test_a_call_through_the_service_then_every_query(running, client, settings):
    nc = running
    send = {"caller": ALICE, "callees": [BOB], "callType": "videoCall", "callID": "q-1", "customData": "hi"}
    await client.command("invitation", "send", send, token("alice"))
    await caught_up(nc)
    _, active = await query(nc, "active_calls")
    assert [call["callID"] for call in active["calls"]] == ["q-1"]
    await client.command("invitation", "accept", {"callID": "q-1", "callee": BOB}, token("bob"))
    await asyncio.sleep(0.2)
    await caught_up(nc)

    status, call = await query(nc, "call", {"callID": "q-1"})
    assert status is None and call["outcome"] == "answered" and call["customData"] == "hi"
    assert [(c["id"], c["state"]) for c in call["callees"]] == [("bob", "accepted")] and call["setupSeconds"] >= 0
    _, timeline = await query(nc, "timeline", {"callID": "q-1", "limit": 2})
    assert [e["event"]["type"] for e in timeline["events"]] == ["onOutgoingCallSent", "onIncomingCallReceived"]
    _, rest = await query(nc, "timeline", {"callID": "q-1", "cursor": timeline["nextCursor"]})
    assert len(timeline["events"]) + len(rest["events"]) == call["events"] and rest["nextCursor"] is None
    _, history = await query(nc, "history", {"userID": "bob"})
    assert [(h["role"], h["missed"], h["call"]["callID"]) for h in history["calls"]] == [("callee", False, "q-1")]
    _, missed = await query(nc, "missed", {"userID": "bob"})
    assert missed == {"userID": "bob", "calls": [], "nextCursor": None}
    _, room = await query(nc, "room", {"callID": "q-1"})
    assert room["callID"] == "q-1" and isinstance(room["members"], list)
    _, devices = await query(nc, "devices", {"userID": "bob"})
    assert devices["userID"] == "bob"


async def test_errors_are_mapped_like_commands(running):
    nc = running
    assert await query(nc, "call", {"callID": "nope"}) == ("404", {"error": {
        "code": "unknown_call", "message": "call nope is not in the projections - at `$.callID`"}})
    status, body = await query(nc, "history", {"userID": 7})
    assert status == "400" and body["error"]["code"] == "invalid_field" and "`$.userID`" in body["error"]["message"]
    status, body = await query(nc, "active_calls", {"limit": 501})
    assert status == "400" and "`$.limit`" in body["error"]["message"]
    reply = await nc.request("ringlog.query.timeline", b"{not json", timeout=5)
    assert reply.headers["Nats-Service-Error-Code"] == "400"
    swap = await nc.request("ringlog.cmd.projections.swap", b'{"file": "x"}', timeout=5)
    assert swap.headers["Nats-Service-Error-Code"] == "401"  # the one write needs a token


async def test_lag_as_a_query_and_as_prometheus_gauges(running, settings):
    nc = running
    await publish_events(nc, Subjects(settings.prefix), mixed_calls(20, seed=41))
    lag = await caught_up(nc)
    assert lag["lagEvents"] == 0 and lag["position"] == lag["streamLastSeq"] > 0 and "timeline" in lag["readModels"]
    url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
    wanted = ["ringlog_projection_lag_events 0.0", "ringlog_projection_lag_seconds 0.0",
              f"ringlog_projection_position {float(lag['position'])}"]
    for _ in range(60):  # the gauges refresh every second
        text = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())).decode()
        if all(line in text.splitlines() for line in wanted):
            break
        await asyncio.sleep(0.1)
    assert all(line in text.splitlines() for line in wanted), text
    assert 'ringlog_queries_total{outcome="ok",query="lag"}' in text


async def test_cli_commands_read_through_the_queries(running, settings, capsys):
    nc = running
    await publish_events(nc, Subjects(settings.prefix), mixed_calls(12, seed=42))
    await caught_up(nc)
    parser = argparse.ArgumentParser(prog="ringlog")
    register(parser.add_subparsers(dest="command", required=True))
    common = ["--nats", settings.nats_url, "--data", str(settings.data_dir)]
    for argv in (["calls", "--limit", "1"], ["call-info", "call-42-0"], ["call-info", "call-42-0", "--timeline"],
                 ["history", "user3"], ["missed", "user3"]):
        args = parser.parse_args(argv + common)
        assert await asyncio.to_thread(args.func, args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and '"callID":"call-42-0"' in lines[1].replace(" ", "")
    args = parser.parse_args(["call-info", "nope"] + common)
    assert await asyncio.to_thread(args.func, args) == 1
    assert '"status": 404' in capsys.readouterr().err
    for argv in (["replay", "--since", "15m"], ["projections", "rebuild"], ["bench", "replay", "--json"]):
        assert callable(parser.parse_args(argv).func)


def test_the_ringlog_command_line_has_the_read_side():
    from ringlog.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["missed", "bob", "--limit", "5"]).limit == 5
    assert parser.parse_args(["replay", "--call", "c", "--republish", "r"]).republish == "r"
    assert parser.parse_args(["bench", "replay", "--events", "10"]).events == 10
    assert parser.parse_args(["projections", "rebuild", "--data", "d"]).data == "d"


async def test_swap_refuses_what_is_not_a_rebuilt_file_here(running, settings):
    nc = running
    headers = {"Authorization": f"Bearer {token('ops')}"}
    for payload, status in ((b'{"file": "../etc/passwd"}', "400"), (b'{"file": "projections.rebuilt-1.sqlite"}', "404")):
        reply = await nc.request("ringlog.cmd.projections.swap", payload, timeout=5, headers=headers)
        assert reply.headers["Nats-Service-Error-Code"] == status
    _, lag = await query(nc, "lag")
    assert "position" in lag  # still serving
