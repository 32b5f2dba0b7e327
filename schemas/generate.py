"""Generate the JSON Schema files under schemas/json from the msgspec definitions.

    python -m schemas.generate           write schemas/json/** (what `make schemas` runs)
    python -m schemas.generate --check   exit 1 and list the files that are stale

Output is deterministic (sorted keys, two-space indent, trailing newline), so the check
is a byte comparison. Files are keyed by their path relative to schemas/json.
"""

from __future__ import annotations

import argparse
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import msgspec

from schemas import commands, enums, events
from schemas.subjects import DEFAULT_PREFIX, STREAM_NAME

JSON_DIR = Path(__file__).resolve().parent / "json"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "urn:ringlog:schemas:"

# ARCHITECTURE.md 3.1: callback -> (recipient, produced when).
RECIPIENTS: dict[str, tuple[str, str]] = {
    "onOutgoingCallSent": ("caller", "an invitation is sent; records the whole invitation"),
    "onIncomingCallReceived": ("each callee not busy", "an invitation is sent"),
    "onOutgoingCallRejectedCauseBusy": ("caller", "a callee is busy or declines with reason busy"),
    "onInvitationUserStateChanged": ("the other invitation members", "a member's invitation state changes"),
    "onIncomingCallAcceptButtonPressed": ("callee", "the callee accepts"),
    "onOutgoingCallAccepted": ("caller", "a callee accepts"),
    "onIncomingCallDeclineButtonPressed": ("callee", "the callee declines"),
    "onOutgoingCallDeclined": ("caller", "a callee declines"),
    "onOutgoingCallCancelButtonPressed": ("caller", "the caller cancels before anyone accepted"),
    "onIncomingCallCanceled": ("each callee still ringing", "the caller cancels"),
    "onIncomingCallTimeout": ("each callee who did not answer", "the invitation's timeout passes"),
    "onOutgoingCallTimeout": ("caller", "the invitation's timeout passes; lists the callees who did not answer"),
    "onIncomingMissedCallClicked": ("callee", "the callee opens a missed call (only after a timeout)"),
    "onIncomingMissedCallDialBackFailed": ("callee", "a dial-back invitation could not be sent"),
    "onError": ("the acting user", "a command is refused by the rules"),
    "onEnter": ("every other member; the joiner gets one per member already present", "a user joins the room"),
    "onLeave": ("every remaining member", "a user leaves, hangs up, is kicked or drops"),
    "onStateChanged": ("the user concerned", "the user's room state changes (join, leave, kick-out, client report)"),
    "onHangUpConfirmation": ("the user hanging up", "before a hang-up; records the hook's answer"),
    "onCallEnd": ("the user whose call ended", "the user's call ends (localHangUp, remoteHangUp, kickOut)"),
    "onCameraStateChanged": ("the reporting user", "the reported value differs from the last known one"),
    "onFrontFacingCameraStateChanged": ("the reporting user", "the reported value differs from the last known one"),
    "onMicrophoneStateChanged": ("the reporting user", "the reported value differs from the last known one"),
    "onAudioOutputChanged": ("the reporting user", "the reported value differs from the last known one"),
    "onLocalCameraExceptionOccurred": ("the reporting user", "a device exception is reported"),
    "onLocalMicrophoneExceptionOccurred": ("the reporting user", "a device exception is reported"),
    "onRemoteCameraExceptionOccurred": ("every other member of the user's room(s)", "a device exception is reported"),
    "onRemoteMicrophoneExceptionOccurred": ("every other member of the user's room(s)", "a device exception is reported"),
}


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def struct_schema(cls: type, schema_id: str, title: str, description: str) -> dict[str, Any]:
    """msgspec's schema of one Struct, with the Struct's own definition lifted to the root."""
    schema = msgspec.json.schema(cls)
    defs = schema.pop("$defs")
    root_name = schema.pop("$ref").rsplit("/", 1)[-1]
    root = defs.pop(root_name)
    if f'"#/$defs/{root_name}"' in json.dumps(defs):
        raise ValueError(f"{root_name} refers to itself; cannot lift it to the root")
    root.update({"$schema": SCHEMA_DIALECT, "$id": ID_BASE + schema_id, "title": title, "description": description})
    if defs:
        root["$defs"] = defs
    return root


def event_subjects(callback: str) -> list[str]:
    return [
        f"{DEFAULT_PREFIX}.evt.{category}.{callback}.{{callID}}.{{recipient}}"
        for category in events.categories_of(callback)
    ]


def event_description(callback: str) -> str:
    categories = events.categories_of(callback)
    if len(categories) > 1:
        where = "category invitation or call by `source`: invitation when the invitation service refused"
    else:
        where = f"category {categories[0]}"
    recipient, when = RECIPIENTS.get(callback, ("see ARCHITECTURE.md 3.1", "see ARCHITECTURE.md 3.1"))
    return f"Callback {callback} ({where}). Recipient: {recipient}. Produced when: {when}."


def command_name(cls: type[commands.Command]) -> str:
    return f"{cls.service}.{cls.verb}"


def command_description(cls: type[commands.Command]) -> str:
    text = (
        f"Request/reply on {DEFAULT_PREFIX}.cmd.{cls.service}.{cls.verb}. "
        f"Acting user: `{cls.actor_field}` (must be the token's user). "
        f"customData is limited to {commands.CUSTOM_DATA_MAX_BYTES} UTF-8 bytes."
    )
    if cls is commands.Send:
        text += " The caller may not be a callee; a callee may not be listed twice."
    return text


def enum_types() -> list[type[Enum]]:
    return [
        value
        for value in vars(enums).values()
        if isinstance(value, type) and issubclass(value, Enum) and value.__module__ == enums.__name__
    ]


def index_document() -> dict[str, Any]:
    return {
        "prefix": DEFAULT_PREFIX,
        "stream": {"name": STREAM_NAME, "subjects": f"{DEFAULT_PREFIX}.evt.>"},
        "events": {
            name: {
                "categories": list(events.categories_of(name)),
                "subjects": event_subjects(name),
                "recipient": RECIPIENTS.get(name, ("", ""))[0],
                "schema": f"events/{name}.json",
            }
            for name in events.CALLBACK_NAMES
        },
        "commands": {
            command_name(cls): {
                "subject": f"{DEFAULT_PREFIX}.cmd.{cls.service}.{cls.verb}",
                "actor": cls.actor_field,
                "schema": f"commands/{command_name(cls)}.json",
            }
            for cls in commands.COMMAND_TYPES
        },
        "hooks": {
            "onHangUpConfirmation": f"{DEFAULT_PREFIX}.hook.onHangUpConfirmation.{{callID}}.{{userID}}",
        },
    }


def build() -> dict[str, str]:
    """Every generated file: path relative to schemas/json -> content."""
    files: dict[str, str] = {}
    for name, cls in events.BY_NAME.items():
        path = f"events/{name}.json"
        files[path] = dumps(struct_schema(cls, path, name, event_description(name)))
    for cls in commands.COMMAND_TYPES:
        path = f"commands/{command_name(cls)}.json"
        files[path] = dumps(struct_schema(cls, path, command_name(cls), command_description(cls)))
    files["enums.json"] = dumps({cls.__name__: [member.value for member in cls] for cls in enum_types()})
    files["index.json"] = dumps(index_document())
    return files


def existing(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*.json")} if root.is_dir() else set()


def stale(root: Path = JSON_DIR) -> list[str]:
    """Paths that are missing, differ from the generator's output, or are no longer generated."""
    expected = build()
    problems = []
    for path, content in sorted(expected.items()):
        target = root / path
        if not target.is_file():
            problems.append(f"{path} (missing)")
        elif target.read_text(encoding="utf-8") != content:
            problems.append(f"{path} (differs)")
    problems.extend(f"{path} (not generated any more)" for path in sorted(existing(root) - set(expected)))
    return problems


def write(root: Path = JSON_DIR) -> list[str]:
    """Write every generated file, remove .json files no longer generated; return what changed."""
    expected = build()
    changed = []
    for path, content in sorted(expected.items()):
        target = root / path
        if target.is_file() and target.read_text(encoding="utf-8") == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode("utf-8"))
        changed.append(path)
    for path in sorted(existing(root) - set(expected)):
        (root / path).unlink()
        changed.append(f"{path} (removed)")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any generated file is stale")
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="output folder (default: schemas/json)")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.out)
        if problems:
            print("stale generated schema files (run `make schemas`):", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"{len(build())} schema files are up to date")
        return 0
    changed = write(args.out)
    print(f"wrote {len(changed)} changed file(s) under {args.out}" if changed else "schema files already up to date")
    for path in changed:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
