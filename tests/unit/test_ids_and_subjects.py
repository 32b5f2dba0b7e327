"""Id rules, the one token encoding, and subjects (ARCHITECTURE.md sections 2 and 2.1)."""

from __future__ import annotations

import random
import re
import time
import uuid

import msgspec
import pytest

from schemas.enums import Source
from schemas.events import BY_NAME, CameraStateChanged, CallEnd, Enter, Error, IncomingCallReceived, StateChanged
from schemas.ids import InvalidId, check_call_id, check_user_id, decode_token, encode_token, new_uuid
from schemas.subjects import Subjects
from schemas.types import CommandID, User, ZegoUIKitError

KIT_PUNCTUATION = "~!@#$%^&*()_+=-`;',.<>/\\"
TOKEN = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+")  # no `.`, `*`, `>`, whitespace or a bare `%`
ALPHABET = list("abcXYZ019_-" + KIT_PUNCTUATION + " \t\n")
ALPHABET += ["%2E", "%25", "%2e", "é", "中", "😀", "\u00a0", "\u2028", "e\u0301"]


def generated_strings(count: int = 3000, seed: int = 20240501) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(ALPHABET, k=rng.randint(1, 24))) for _ in range(count)]


def generated_ids(count: int = 500, seed: int = 7) -> list[str]:
    """Ids the kit accepts, rich in characters a subject cannot hold."""
    rng = random.Random(seed)
    return ["".join(rng.choices("ab9_-" + KIT_PUNCTUATION, k=rng.randint(1, 40))) for _ in range(count)]


# --- encode_token / decode_token ------------------------------------------------------


def test_round_trip_over_generated_strings():
    tokens = {}
    for raw in generated_strings():
        token = encode_token(raw)
        assert decode_token(token) == raw
        assert TOKEN.fullmatch(token), token
        assert tokens.setdefault(token, raw) == raw, "two ids share a token"


@pytest.mark.parametrize(
    ("raw", "token"),
    [
        ("ann.lee@x", "ann%2Elee%40x"),
        ("bob", "bob"),
        ("A-z_09", "A-z_09"),
        ("%2E", "%252E"),
        ("a b", "a%20b"),
        ("*", "%2A"),
        (">", "%3E"),
        ("é", "%C3%A9"),
        ("~!", "%7E%21"),
    ],
)
def test_known_encodings(raw, token):
    assert encode_token(raw) == token and decode_token(token) == raw


def test_every_kit_character_is_escaped_upper_case():
    for ch in KIT_PUNCTUATION.replace("_", "").replace("-", ""):
        assert encode_token(ch) == f"%{ord(ch):02X}"


def test_an_empty_id_has_no_token():
    with pytest.raises(InvalidId):
        encode_token("")


# --- check_user_id / check_call_id ----------------------------------------------------


def test_byte_limits():
    assert check_user_id("u" * 64) == "u" * 64 and check_call_id("c" * 128) == "c" * 128
    with pytest.raises(InvalidId, match=r"65 bytes, at most 64 .* - at `\$\.user\.id`"):
        check_user_id("u" * 65)
    with pytest.raises(InvalidId, match=r"129 bytes, at most 128 .* - at `\$\.callID`"):
        check_call_id("c" * 129)
    with pytest.raises(InvalidId, match="66 bytes"):  # 33 characters, but bytes count
        check_user_id("é" * 33)


def test_kit_charset_is_accepted():
    assert check_user_id(KIT_PUNCTUATION) == KIT_PUNCTUATION
    for raw in generated_ids():
        assert check_call_id(raw) == raw
        if len(raw.encode()) <= 64:
            assert check_user_id(raw) == raw


BAD_CHARACTERS = ["ann lee", "bob\n", "\tbob", "zoë", "中", "a|b", "a?b", "a:b", 'a"b', "a[b]", "{a}", "\u00a0"]


@pytest.mark.parametrize("bad", BAD_CHARACTERS)
def test_other_characters_are_refused_naming_the_field(bad):
    with pytest.raises(InvalidId) as refused:
        check_user_id(bad, field="$.callees[2].id")
    assert refused.value.field == "$.callees[2].id" and str(refused.value).endswith("- at `$.callees[2].id`")
    with pytest.raises(InvalidId, match=r"- at `\$\.callID`"):
        check_call_id(bad)


@pytest.mark.parametrize("bad", ["", None, 42, b"bob"])
def test_empty_and_non_strings_are_refused(bad):
    with pytest.raises(InvalidId, match=r"- at `\$\.user\.id`"):
        check_user_id(bad)


# --- subjects -------------------------------------------------------------------------

ENVELOPE = dict(eventID="e1", seq=1, occurredAt="2024-05-01T12:00:00.123Z", causationID="cmd-1")
BOB, ANN = User(id="bob"), User(id="ann.lee@x")


def nats_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard semantics: `*` is one token, a final `>` is one or more."""
    want, have = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or token not in ("*", have[index]):
            return False
    return len(want) == len(have)


@pytest.mark.parametrize(
    ("event", "subject"),
    [
        (IncomingCallReceived(**ENVELOPE, callID="call.42", recipient="bob", source=Source.invitation, caller=ANN,
                              callType="voiceCall", callees=[BOB]),
         "ringlog.evt.invitation.onIncomingCallReceived.call%2E42.bob"),
        (CallEnd(**ENVELOPE, callID="c1", recipient="ann.lee@x", source=Source.room, reason="kickOut", kickerUserID="bob"),
         "ringlog.evt.call.onCallEnd.c1.ann%2Elee%40x"),
        (Enter(**ENVELOPE, callID="c1", recipient="bob", source=Source.room, user=ANN), "ringlog.evt.user.onEnter.c1.bob"),
        (StateChanged(**ENVELOPE, callID="c1", recipient="bob", source=Source.room, reason="Logined"),
         "ringlog.evt.room.onStateChanged.c1.bob"),
        (CameraStateChanged(**ENVELOPE, callID="c1", recipient="bob", source=Source.device_monitor, isOpened=True),
         "ringlog.evt.audioVideo.onCameraStateChanged.c1.bob"),
    ],
)
def test_event_subject_per_category(event, subject):
    assert Subjects().event(event) == subject
    assert Subjects("acme.ringlog").event(event) == "acme." + subject


@pytest.mark.parametrize(
    ("source", "category"), [(Source.invitation, "invitation"), (Source.room, "call"), (Source.device_monitor, "call")]
)
def test_on_error_category_follows_the_source(source, category):
    error = ZegoUIKitError(code=301003004, message="not ringing", method="accept")
    event = Error(**ENVELOPE, callID="c1", recipient="bob", source=source, error=error)
    assert Subjects().event(event) == f"ringlog.evt.{category}.onError.c1.bob"


def test_filters():
    subjects = Subjects()
    one_callback = subjects.event_filter(category="invitation", callback="onIncomingCallReceived")
    one_user, one_call = subjects.event_filter(user="bob"), subjects.event_filter(call_id="call42")
    assert (one_user, one_call) == ("ringlog.evt.*.*.*.bob", "ringlog.evt.*.*.call42.*")
    assert subjects.events_all == "ringlog.evt.>" and subjects.event_filter() == "ringlog.evt.*.*.*.*"
    received = subjects.event_subject("invitation", "onIncomingCallReceived", "call42", "bob")
    enter = subjects.event_subject("user", "onEnter", "call42", "ann")
    other_call = subjects.event_subject("user", "onEnter", "call43", "bob")
    matches = lambda pattern: [s for s in (received, enter, other_call) if nats_matches(pattern, s)]  # noqa: E731
    assert matches(one_callback) == [received]
    assert matches("ringlog.evt.invitation.onIncomingCallReceived.>") == [received]
    assert matches(one_user) == [received, other_call]
    assert matches(one_call) == [received, enter]
    assert matches(subjects.events_all) == [received, enter, other_call]
    assert subjects.event_filter(user="ann.lee@x") == "ringlog.evt.*.*.*.ann%2Elee%40x"


@pytest.mark.parametrize("prefix", ["ringlog", "acme.ringlog"])
def test_parse_event_subject_is_the_inverse(prefix):
    subjects, names = Subjects(prefix), sorted(BY_NAME)
    for index, call_id in enumerate(generated_ids()):
        recipient = generated_ids(count=1, seed=index)[0][:64]
        fields = ("audioVideo", names[index % len(names)], call_id, recipient)
        subject = subjects.event_subject(*fields)
        assert subjects.parse_event_subject(subject) == fields
        assert len(subject.split(".")) == len(prefix.split(".")) + 5


@pytest.mark.parametrize(
    "subject",
    ["other.evt.user.onEnter.c1.b", "ringlog.cmd.room.join", "ringlog.evt.user.onEnter.c1", "ringlog.evt.user.onEnter.c1.b.x"],
)
def test_parse_refuses_what_is_not_an_event_subject(subject):
    with pytest.raises(ValueError, match="not an event subject"):
        Subjects().parse_event_subject(subject)


@pytest.mark.parametrize("prefix", ["", "a b", "a\tb", "*", "ring>", "a.*", ".a", "a.", "a..b", None])
def test_prefix_validation(prefix):
    with pytest.raises(ValueError, match="invalid subject prefix"):
        Subjects(prefix)


def test_request_reply_and_hook_subjects():
    subjects = Subjects()
    assert subjects.command("invitation", "send") == "ringlog.cmd.invitation.send"
    assert subjects.query("timeline") == "ringlog.query.timeline"
    hook = subjects.hang_up_hook("call.42", "ann.lee@x")
    assert hook == "ringlog.hook.onHangUpConfirmation.call%2E42.ann%2Elee%40x"
    assert [decode_token(t) for t in hook.split(".")[-2:]] == ["call.42", "ann.lee@x"]


@pytest.mark.parametrize("call_id", ["*", ">", "a*b", "a.>", "*.*", "%2A", "call 42"])
def test_a_call_id_never_yields_a_wildcard(call_id):
    subjects = Subjects()
    built = [  # (subject, index of the call token)
        (subjects.event_subject("call", "onCallEnd", call_id, "bob"), 4),
        (subjects.hang_up_hook(call_id, "bob"), 3),
        (subjects.event_filter(category="call", callback="onCallEnd", call_id=call_id, user="bob"), 4),
    ]
    for subject, position in built:
        tokens = subject.split(".")
        assert not re.search(r"[*>\s]", subject), subject
        assert tokens[position] == encode_token(call_id) and decode_token(tokens[position]) == call_id
    assert subjects.event_filter(call_id=call_id).split(".")[2:] == ["*", "*", encode_token(call_id), "*"]


def test_new_ids_are_distinct_version_7_uuids_that_follow_the_clock():
    before_ms = time.time_ns() // 1_000_000
    ids = [new_uuid() for _ in range(5000)]
    after_ms = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids[:600]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before_ms <= parsed.int >> 80 <= after_ms
        assert check_call_id(text) == text and encode_token(text) == text  # a plain id and subject token


def test_new_ids_made_a_millisecond_apart_sort_in_that_order():
    earlier = new_uuid()
    time.sleep(0.002)
    later = [new_uuid() for _ in range(50)]
    assert all(earlier < text for text in later)


def test_new_ids_stay_distinct_across_refills_of_the_randomness_block():
    from schemas import ids

    ids._random_tails.clear()
    drawn = [new_uuid() for _ in range(600)]  # two refills of 256 tails each, and part of a third
    assert len(set(drawn)) == 600 and len({text[19:] for text in drawn}) == 600  # the random part differs
    assert all(uuid.UUID(text).version == 7 for text in drawn)


def test_internal_command_ids_keep_a_rule_abiding_key_and_hash_a_long_one():
    from services.runtime.handling import internal_command_id

    call_ids = [new_uuid() for _ in range(3)]
    ids = [internal_command_id("timeout", call_id) for call_id in call_ids]
    assert ids == [f"timeout-{call_id}" for call_id in call_ids]
    assert sorted(ids) == [f"timeout-{call_id}" for call_id in sorted(call_ids)]  # in the calls' order
    assert internal_command_id("timeout", call_ids[0]) == ids[0]  # deterministic
    longest = "c" * 128  # a valid callID, too long with the prefix
    hashed = internal_command_id("timeout", longest)
    assert hashed == internal_command_id("timeout", longest) and hashed.startswith("timeout-") and len(hashed) == 48
    for command_id in (*ids, hashed, internal_command_id("dialBack", "kit~id!")):
        assert msgspec.json.decode(msgspec.json.encode(command_id), type=CommandID) == command_id
