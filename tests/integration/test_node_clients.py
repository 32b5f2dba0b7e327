"""Independent Node.js clients: the AsyncAPI parser accepts schemas/asyncapi.yaml, and a plain
`nats` subscriber per callback type validates every event of real flows against the schemas
(schemas/json/events/*.json, and the schemas embedded in asyncapi.yaml)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ringlog.callbacks import CALLBACKS
from tests.integration.test_sdk_flows import produce_every_callback, settled_events

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the Node.js client tests need node 18+ and npm")


@pytest.fixture(scope="module")
def node_modules():
    """Install tests/node's packages (npm ci from the lock file) when they are missing."""
    if not (NODE_DIR / "node_modules" / "@asyncapi" / "parser").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: cannot install tests/node's packages")
        verb = "ci" if (NODE_DIR / "package-lock.json").is_file() else "install"
        done = subprocess.run([npm, verb, "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"npm {verb} failed:\n{done.stdout}\n{done.stderr}"
    return NODE_DIR / "node_modules"


class NodeSubscriber:
    """callback-client.mjs as a child process: started, then asked for its report."""

    def __init__(self, settings, *extra: str):
        self.args = ["callback-client.mjs", "--server", settings.nats_url, "--prefix", settings.prefix, *extra]
        self.process = None

    async def __aenter__(self):
        self.process = await asyncio.create_subprocess_exec(
            NODE, *self.args, cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        line = await asyncio.wait_for(self.process.stdout.readline(), 20)
        if not line:
            raise AssertionError((await self.process.stderr.read()).decode())
        self.ready = json.loads(line)
        return self

    async def report(self) -> dict:
        self.process.stdin.close()
        out, err = await asyncio.wait_for(self.process.communicate(), 20)
        assert self.process.returncode == 0, err.decode()
        return json.loads(out.decode().strip().splitlines()[-1])

    async def __aexit__(self, *exc_info):
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def test_the_asyncapi_parser_accepts_the_document(node_modules):
    done = subprocess.run([NODE, "validate-asyncapi.mjs"], cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["errors"] == [] and report["version"] == "3.0.0"
    assert report["channels"] >= len(CALLBACKS) and report["operations"] >= len(CALLBACKS) + 11 + 8


def test_the_asyncapi_parser_refuses_a_broken_document(node_modules, tmp_path):
    text = (NODE_DIR.parent.parent / "schemas" / "asyncapi.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace('"parameters": {\n        "callID"', '"parameters": {\n        "callId"', 1))
    done = subprocess.run([NODE, "validate-asyncapi.mjs", str(broken)], cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "asyncapi3-channel-parameters" in done.stdout


async def test_node_subscribers_per_callback_validate_every_event(node_modules, services, client, log, settings):
    await services("invitation", "room", "device")
    async with NodeSubscriber(settings) as by_json, NodeSubscriber(settings, "--schemas", "asyncapi") as by_asyncapi:
        assert by_json.ready["schemas"] == "schemas/json/events"
        assert by_asyncapi.ready["schemas"] == "schemas/asyncapi.yaml"
        assert by_json.ready["callbacks"] == by_asyncapi.ready["callbacks"] == len({cb.name for cb in CALLBACKS})
        await produce_every_callback(client, log)
        total = len(await settled_events(log))
        reports = [await by_json.report(), await by_asyncapi.report()]
    for report in reports:
        assert report["errors"] == []
        assert sorted(report["seen"]) == sorted(f"{cb.category}.{cb.name}" for cb in CALLBACKS)
        assert report["total"] == total


async def test_the_node_subscriber_reports_an_event_that_breaks_the_schema(node_modules, client, settings):
    """No stream here: a core publish reaches the subscriber only."""
    async with NodeSubscriber(settings, "--user", "ann.lee@x") as node:
        bad = {"type": "onEnter", "eventID": "e1", "callID": "c1", "recipient": "ann.lee@x", "seq": 1,
               "occurredAt": "2024-01-01T00:00:00.000Z", "source": "room", "causationID": "k1"}  # no `user`
        await client.nc.publish("ringlog.evt.user.onEnter.c1.ann%2Elee%40x", json.dumps(bad).encode(),
                                headers={"Nats-Msg-Id": "e1"})
        await client.nc.publish("ringlog.evt.user.onEnter.c1.bob", json.dumps(bad).encode())  # not ann's
        await client.nc.flush()
        report = await node.report()
    assert report["seen"] == {"user.onEnter": 1} and len(report["errors"]) == 1
    assert "user" in report["errors"][0]
