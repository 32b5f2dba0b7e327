"""The command client without a server: payloads, tokens, typed replies and typed errors."""

import uuid
from dataclasses import dataclass, field

import msgspec
import pytest
from nats.errors import NoRespondersError

from ringlog import errors
from ringlog.client import Client, CommandError, ServiceUnavailable
from ringlog.hang_up_hook import HangUpHookResponder, hook_filter
from ringlog.identity import MissingToken, as_user, require_token, resolve_token
from ringlog.replies import CommandReply, HangUpReply, JoinReply, MissedCallClickReply, SendReply
from schemas.subjects import Subjects
from schemas.types import User


@dataclass
class Reply:
    data: bytes
    headers: dict | None = None


@dataclass
class FakeNats:
    """Records requests; answers with the queued replies (or raises a queued exception)."""

    answers: list = field(default_factory=list)
    sent: list = field(default_factory=list)

    async def request(self, subject, data, timeout=None, headers=None):
        self.sent.append((subject, msgspec.json.decode(data), headers))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(**body):
    return Reply(msgspec.json.encode(body))


def refused(status, code, message="m"):
    return Reply(msgspec.json.encode({"error": {"code": code, "message": message}}),
                 {"Nats-Service-Error-Code": str(status), "Nats-Service-Error": message})


@pytest.mark.parametrize("status, cls", [
    (400, errors.BadRequest), (401, errors.Unauthenticated), (403, errors.Forbidden), (404, errors.NotFound),
    (409, errors.Conflict), (429, errors.RateLimited), (500, errors.ServerError), (503, errors.ServerError),
    (418, errors.CommandError),
])
async def test_each_status_raises_its_commanderror_subclass(status, cls):
    client = Client(FakeNats([refused(status, "some_code", "what and where")]), token="t")
    with pytest.raises(cls) as raised:
        await client.command("invitation", "accept", {"callID": "c", "callee": {"id": "bob"}})
    error = raised.value
    assert type(error) is cls and isinstance(error, CommandError)
    assert (error.status, error.code, error.message) == (status, "some_code", "what and where")
    assert str(error) == f"{status} some_code: what and where"


async def test_no_responder_is_service_unavailable():
    client = Client(FakeNats([NoRespondersError()]), token="t")
    with pytest.raises(ServiceUnavailable):
        await client.join("c", "bob")


async def test_typed_commands_build_the_documented_payloads():
    nc = FakeNats([ok(callID="generated", eventIDs=["e1", "e2"]), ok(callID="c1", eventIDs=[], roomSessionID="s", members=["bob"]),
                   ok(callID="c1", eventIDs=["e"], confirmed=False), ok(callID="c1", dialBackCallID="c2", extra=1),
                   ok(callID="c1", eventIDs=["e"])])
    tokens = {"alice": "ta", "bob": "tb"}
    client = Client(nc, token_provider=tokens.__getitem__)
    sent = await client.send_invitation("alice", ["bob", {"id": "carol", "name": "C"}], "videoCall", custom_data="x",
                                        timeout_seconds=30)
    joined = await client.join("c1", User(id="bob", name="Bob"))
    ended = await client.hang_up("c1", "bob", command_id="cmd-7")
    clicked = await client.missed_call_click("c1", "bob", dial_back=False)
    await client.device_report("c1", "bob", camera=False, camera_exception=None)
    assert (type(sent), sent.callID, sent.eventIDs) == (SendReply, "generated", ["e1", "e2"])
    assert type(joined) is JoinReply and joined.members == ["bob"] and joined.roomSessionID == "s"
    assert type(ended) is HangUpReply and ended.confirmed is False
    assert type(clicked) is MissedCallClickReply and clicked.dialBackCallID == "c2" and clicked.eventIDs == []

    subjects = [subject for subject, _, _ in nc.sent]
    assert subjects == ["ringlog.cmd.invitation.send", "ringlog.cmd.room.join", "ringlog.cmd.room.hang_up",
                        "ringlog.cmd.invitation.missed_call_click", "ringlog.cmd.device.report"]
    send, join, hang_up, click, report = (payload for _, payload, _ in nc.sent)
    assert send["caller"] == {"id": "alice", "name": ""} and send["callees"][1] == {"id": "carol", "name": "C"}
    assert (send["callType"], send["customData"], send["timeoutSeconds"], send["callID"]) == ("videoCall", "x", 30, None)
    assert join["user"] == {"id": "bob", "name": "Bob"} and hang_up["commandID"] == "cmd-7"
    assert click["dialBack"] is False and uuid.UUID(send["commandID"]).version == 7  # drawn by the SDK: time-ordered
    assert {k: v for k, v in report.items() if k not in ("commandID",)} == {
        "callID": "c1", "user": {"id": "bob", "name": ""}, "camera": False, "cameraException": None}
    assert [headers["Authorization"] for _, _, headers in nc.sent] == ["Bearer ta"] + ["Bearer tb"] * 4


async def test_raw_commands_take_the_token_of_the_acting_user_or_the_given_one():
    nc = FakeNats([ok(callID="c"), ok(callID="c"), ok(callID="c")])
    client = Client(nc, token_provider=lambda user_id: f"token-of-{user_id}")
    assert await client.command("room", "kick", {"callID": "c", "kicker": {"id": "ann"}, "target": {"id": "bob"}}) == {"callID": "c"}
    await client.command("room", "kick", {"callID": "c", "kicker": {"id": "ann"}}, token="explicit")
    await client.with_token("fixed").accept("c", "bob")
    assert [headers["Authorization"] for _, _, headers in nc.sent] == [
        "Bearer token-of-ann", "Bearer explicit", "Bearer fixed"]


def test_replies_ignore_unknown_fields_and_default_event_ids():
    assert msgspec.convert({"callID": "c", "new": 1}, CommandReply) == CommandReply(callID="c", eventIDs=[])


async def test_users_and_tokens_in_every_accepted_form():
    assert as_user("bob") == as_user({"id": "bob"}) == User(id="bob")
    with pytest.raises(TypeError):
        as_user(42)

    async def provider(user_id):
        return f"async-{user_id}"

    assert await resolve_token(provider, "bob") == "async-bob"
    assert await resolve_token("plain", "bob") == "plain" and await resolve_token(None, "bob") is None
    with pytest.raises(MissingToken, match="token_provider"):
        await require_token(None, "bob", "onCallEnd's defaultAction")


@pytest.mark.parametrize("answer, expected", [(True, True), (False, False), (None, False), (1, True)])
async def test_hook_answers_follow_the_confirm_function(answer, expected):
    hook = HangUpHookResponder(None, Subjects(), "bob", lambda callID, user: answer)
    assert await hook.decide(b'{"callID": "c", "user": {"id": "bob", "name": "B"}}') is expected


async def test_a_raising_confirm_or_an_unreadable_request_confirms():
    async def raising(callID, user):
        raise RuntimeError("backend down")

    assert await HangUpHookResponder(None, Subjects(), "bob", raising).decide(b'{"callID": "c", "user": {"id": "bob"}}')
    assert await HangUpHookResponder(None, Subjects(), "bob", lambda c, u: False).decide(b"not json")


def test_hook_subjects_encode_ids():
    assert hook_filter(Subjects(), "ann.lee@x") == "ringlog.hook.onHangUpConfirmation.*.ann%2Elee%40x"
    assert hook_filter(Subjects("acme.rl"), "bob", "c 1".replace(" ", "_")) == "acme.rl.hook.onHangUpConfirmation.c_1.bob"
