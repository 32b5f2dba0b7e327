"""schemas/asyncapi.yaml: generated, up to date, and complete (the Node test parses it)."""

import json
import re

import msgspec
import pytest

from schemas import asyncapi, commands, events
from schemas.asyncapi import QUERIES


@pytest.fixture(scope="module")
def document():
    return asyncapi.build()


def load(text: str) -> dict:
    """The file is JSON after comment lines (JSON is YAML)."""
    return json.loads("".join(line for line in text.splitlines(True) if not line.startswith("#")))


def resolve(document: dict, reference: str):
    node = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_committed_file_is_up_to_date(capsys):
    assert asyncapi.OUT.read_text(encoding="utf-8") == asyncapi.render(), "run `python -m schemas.asyncapi`"
    assert asyncapi.main(["--check"]) == 0


def test_check_reports_a_stale_file_and_a_write_fixes_it(tmp_path):
    out = tmp_path / "asyncapi.yaml"
    out.write_text("# old\n{}\n")
    assert asyncapi.main(["--check", "--out", str(out)]) == 1
    assert asyncapi.main(["--out", str(out)]) == 0 and asyncapi.main(["--check", "--out", str(out)]) == 0
    assert load(out.read_text())["asyncapi"] == "3.0.0"


def test_one_channel_per_callback_and_category(document):
    for name in events.CALLBACK_NAMES:
        for category in events.categories_of(name):
            channel = document["channels"][f"event.{category}.{name}"]
            assert channel["address"] == f"ringlog.evt.{category}.{name}.{{callID}}.{{recipient}}"
            assert set(channel["parameters"]) == set(re.findall(r"\{(\w+)\}", channel["address"]))
            operation = document["operations"][f"publish.{category}.{name}"]
            assert operation["action"] == "send"
            assert resolve(document, operation["messages"][0]["$ref"]) == channel["messages"][name]


def test_every_event_message_carries_its_msgspec_schema(document):
    for name, cls in events.BY_NAME.items():
        payload = resolve(document, document["components"]["messages"][name]["payload"]["$ref"])
        fields = {f.encode_name for f in msgspec.structs.fields(cls)}
        assert set(payload["properties"]) == fields | {"type"}
        assert payload["properties"]["type"] == {"enum": [name]}
        required = {f.encode_name for f in msgspec.structs.fields(cls) if f.required}
        assert set(payload["required"]) == required | {"type"}


def test_commands_are_request_reply_with_typed_reply_and_error(document):
    for cls in commands.COMMAND_TYPES:
        key = f"command.{cls.service}.{cls.verb}"
        channel = document["channels"][key]
        assert channel["address"] == f"ringlog.cmd.{cls.service}.{cls.verb}"
        request = resolve(document, channel["messages"]["request"]["$ref"])
        assert set(resolve(document, request["payload"]["$ref"])["properties"]) == \
            {f.encode_name for f in msgspec.structs.fields(cls)}
        operation = document["operations"][key]
        assert operation["action"] == "receive"
        replies = resolve(document, operation["reply"]["channel"]["$ref"])["messages"]
        assert set(replies) == {"reply", "error"} and replies["error"]["$ref"] == "#/components/messages/Error"
        reply = resolve(document, replies["reply"]["$ref"])
        assert {"callID", "eventIDs"} <= set(resolve(document, reply["payload"]["$ref"])["properties"])
    error = resolve(document, document["components"]["messages"]["Error"]["payload"]["$ref"])
    assert error["required"] == ["error"]


def test_queries_and_the_hook(document):
    assert set(QUERIES) == {"call", "timeline", "active_calls", "history", "missed", "room", "devices", "lag"}
    for name in QUERIES:
        assert document["channels"][f"query.{name}"]["address"] == f"ringlog.query.{name}"
        assert document["operations"][f"query.{name}"]["reply"]
    hook = document["channels"]["hook.onHangUpConfirmation"]
    assert hook["address"] == "ringlog.hook.onHangUpConfirmation.{callID}.{userID}"
    assert document["operations"]["hook.onHangUpConfirmation"]["action"] == "send"


def test_every_reference_resolves_inside_the_document(document):
    text = json.dumps(document)
    references = set(re.findall(r'"\$ref": "([^"]+)"', text))
    assert references and all(reference.startswith("#/") for reference in references)
    for reference in references:
        resolve(document, reference)
    assert "$defs" not in text
