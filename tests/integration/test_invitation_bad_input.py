"""Bad input gets a documented error naming the field; nothing is written; the service keeps answering."""

import json

import pytest

from ringlog.client import CommandError
from services.runtime.auth import issue_token
from tests.integration.harness import token

SUBJECT = "ringlog.cmd.invitation.send"
GOOD = {"commandID": "c-1", "caller": {"id": "alice"}, "callees": [{"id": "bob"}], "callType": "voiceCall"}


@pytest.fixture
async def invitation(services):
    await services("invitation")


def with_(**changes):
    return json.dumps({**GOOD, **changes}).encode()


CASES = [
    ("malformed JSON", b'{"commandID": "c-1", "caller": ', None, 400, "malformed_json", "not valid JSON"),
    ("wrong type", with_(callees=[{"id": 7}]), None, 400, "invalid_field", "$.callees[0].id"),
    ("wrong enum", with_(callType="hologram"), None, 400, "invalid_field", "$.callType"),
    ("missing field", json.dumps({k: v for k, v in GOOD.items() if k != "caller"}).encode(), None, 400, "invalid_field", "caller"),
    ("id with space", with_(callees=[{"id": "bo b"}]), None, 400, "invalid_field", "$.callees[0].id"),
    ("non-ASCII id", with_(callID="anruf-ü"), None, 400, "invalid_field", "$.callID"),
    ("user id too long", with_(callees=[{"id": "b" * 65}]), None, 400, "invalid_field", "$.callees[0].id"),
    ("call id too long", with_(callID="c" * 129), None, 400, "invalid_field", "$.callID"),
    ("customData > 4 KB", with_(customData="é" * 2049), None, 400, "invalid_field", "$.customData"),
    ("10 callees", with_(callees=[{"id": f"u{i}"} for i in range(10)]), None, 400, "invalid_field", "$.callees"),
    ("timeout out of range", with_(timeoutSeconds=601), None, 400, "invalid_field", "$.timeoutSeconds"),
    ("missing token", with_(), "", 401, "unauthenticated", "Authorization"),
    ("forged token", with_(), issue_token("not-the-secret-at-all-0123456789abcdef", "alice"), 401, "unauthenticated", "Authorization"),
    ("someone else's token", with_(), token("mallory"), 403, "not_token_user", "$.caller.id"),
]


@pytest.mark.parametrize("data, bearer, status, code, field", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
async def test_bad_send_is_refused_and_writes_nothing(invitation, client, log, data, bearer, status, code, field):
    headers = {"Authorization": f"Bearer {token('alice') if bearer is None else bearer}"} if bearer != "" else None
    reply = await client.nc.request(SUBJECT, data, timeout=2, headers=headers)
    assert reply.headers["Nats-Service-Error-Code"] == str(status)
    body = json.loads(reply.data)
    assert body["error"]["code"] == code
    assert field in body["error"]["message"]
    assert await log.events() == []
    # the service keeps answering
    ok = await client.command("invitation", "send", json.loads(with_()), token("alice"))
    assert ok["callID"]


async def test_unknown_call_is_404_and_writes_nothing(invitation, client, log):
    for verb in ("accept", "decline", "received"):
        with pytest.raises(CommandError) as refused:
            await client.command("invitation", verb, {"callID": "nope", "callee": {"id": "bob"}}, token("bob"))
        assert (refused.value.status, refused.value.code) == (404, "unknown_call")
        assert "nope" in refused.value.message
    with pytest.raises(CommandError) as refused:
        await client.command("invitation", "cancel", {"callID": "nope", "caller": {"id": "alice"}}, token("alice"))
    assert refused.value.status == 404
    assert await log.events() == []


async def test_refusal_is_replayed_for_a_retried_command(invitation, client, log):
    await client.command("invitation", "send", {**GOOD, "callID": "call-1"}, token("alice"))
    retry = {"commandID": "accept-1", "callID": "call-1", "callee": {"id": "carol"}}
    for _ in range(2):
        with pytest.raises(CommandError) as refused:
            await client.command("invitation", "accept", retry, token("carol"))
        assert (refused.value.status, refused.value.code) == (403, "not_a_callee")
    found = await log.wait_for(3)
    assert [event.type for _, event in found] == ["onOutgoingCallSent", "onIncomingCallReceived", "onError"]
