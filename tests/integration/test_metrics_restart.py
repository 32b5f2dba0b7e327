"""The call gauges survive a restart: the services seed them from what they recover, and
the figures of what happens next use the times recorded before the restart."""

from __future__ import annotations

import dataclasses

from ringlog.natsserver import free_port
from tests.integration.harness import start_service, token
from tests.integration.test_prometheus_support import scrape


def value(port: int, name: str, **labels: str) -> float | None:
    return scrape(port).get((name, tuple(sorted(labels.items()))))


async def restart(name: str, settings, running):
    """Stop `running` and start the service again on a new metrics port (the old server keeps its port)."""
    await running.shutdown()
    port = free_port()
    return await start_service(name, dataclasses.replace(settings, metrics_port=port)), port


async def test_rooms_and_their_sessions_are_seeded_after_a_restart(settings, client):
    port = free_port()
    room = await start_service("room", dataclasses.replace(settings, metrics_port=port))
    try:
        for user in ("alice", "bob"):
            await client.join("call-1", user, token=token(user))
        await client.join("call-2", "carol", token=token("carol"))
        assert (value(port, "ringlog_room_members"), value(port, "ringlog_calls_active")) == (3, 2)

        room, port = await restart("room", settings, room)
        assert (value(port, "ringlog_room_members"), value(port, "ringlog_calls_active")) == (3, 2)
        assert value(port, "ringlog_call_talk_seconds_count") == 0  # nothing counted again

        await client.hang_up("call-1", "alice", token=token("alice"))
        assert (value(port, "ringlog_room_members"), value(port, "ringlog_calls_active")) == (1, 1)
        assert value(port, "ringlog_call_talk_seconds_count") == 1
        assert value(port, "ringlog_call_talk_seconds_sum") > 0  # from alice's login, before the restart
    finally:
        await room.shutdown()


async def test_ringing_invitations_are_seeded_after_a_restart(settings, client):
    port = free_port()
    invitation = await start_service("invitation", dataclasses.replace(settings, metrics_port=port))
    try:
        sent = await client.send_invitation("alice", ["bob", "carol"], timeout_seconds=600, token=token("alice"))
        await client.decline(sent.callID, "bob", token=token("bob"))
        assert value(port, "ringlog_invitations_ringing") == 1

        invitation, port = await restart("invitation", settings, invitation)
        assert value(port, "ringlog_invitations_ringing") == 1
        await client.accept(sent.callID, "carol", token=token("carol"))
        assert value(port, "ringlog_invitations_ringing") == 0
        assert value(port, "ringlog_call_outcomes_total", outcome="answered") == 1
        assert value(port, "ringlog_call_outcomes_total", outcome="declined") == 0
        assert value(port, "ringlog_call_setup_seconds_count") == 1
        assert value(port, "ringlog_call_setup_seconds_sum") > 0  # from the send, before the restart
    finally:
        await invitation.shutdown()
