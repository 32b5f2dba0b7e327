"""A command's reply leaves its service after the events it reports: whoever sees the reply
can already find the events routed (the relay queues them before the reply is queued)."""

import asyncio

import nats

from tests.integration.harness import token


async def test_events_are_routed_before_the_reply_that_reports_them(services, client, settings):
    await services("invitation", "room")
    monitor = await nats.connect(settings.nats_url)
    seen: list[str] = []

    async def note(msg) -> None:
        seen.append(msg.subject)

    await monitor.subscribe(">", cb=note)  # one subscription: its messages come in the order they were routed
    await monitor.flush()
    await monitor.flush()  # nats-py's first flush can overtake its SUBs (see services/runtime/sinks.py)
    try:
        for index in range(20):
            caller, callee = f"a{index}", f"b{index}"
            reply = await client.command("invitation", "send", {
                "caller": {"id": caller}, "callees": [{"id": callee}], "callType": "voiceCall"}, token(caller))
            await client.command("room", "join", {"callID": reply["callID"], "user": {"id": caller}}, token(caller))
        inbox = client._requests._inbox.decode()  # the SDK's replies; other inboxes carry acks and API replies
        seen_replies = lambda: [position for position, subject in enumerate(seen) if subject.startswith(inbox)]
        for _ in range(100):
            if len(seen_replies()) == 40:
                break
            await asyncio.sleep(0.02)
        replies = seen_replies()
        assert len(replies) == 40
        before = 0
        for position in replies:  # 2 events (sent, received) before each send's reply, 1 before each join's
            events = sum(1 for subject in seen[before:position] if subject.startswith("ringlog.evt."))
            assert events >= 1, seen[before:position + 1]
            before = position + 1
        # (deliveries to the services' log views show the event's subject too: count each once)
        assert len({subject for subject in seen if subject.startswith("ringlog.evt.")}) == 20 * 3
    finally:
        await monitor.close()
