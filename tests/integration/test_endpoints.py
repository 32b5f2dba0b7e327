"""The micro endpoints' one error mapping: an unexpected failure is counted and answered 500."""

import json

import nats
import pytest

from schemas.commands import Join
from schemas.subjects import Subjects
from services.runtime import sinks
from services.runtime.endpoints import CommandEndpoints, CommandRoute
from services.runtime.metrics import ServiceMetrics
from tests.integration.harness import SECRET, token


@pytest.mark.parametrize("sink_client", [False, True], ids=["micro path", "sink path"])
async def test_an_unexpected_failure_is_a_counted_500_and_the_service_keeps_answering(settings, sink_client):
    calls = []

    async def handler(command):
        calls.append(command)
        if len(calls) == 1:
            raise RuntimeError("boom: a bug in a handler")
        return {"callID": command.callID, "eventIDs": []}

    if sink_client:
        nc = sinks.SinkClient()
        await nc.connect(settings.nats_url)
    else:
        nc = await nats.connect(settings.nats_url)
    metrics = ServiceMetrics("room")
    micro = await CommandEndpoints("room", Subjects(), SECRET, metrics).start(nc, {"join": CommandRoute(Join, handler)})
    try:
        payload = json.dumps({"commandID": "k1", "callID": "c1", "user": {"id": "ann"}}).encode()
        headers = {"Authorization": f"Bearer {token('ann')}"}
        failed = await nc.request("ringlog.cmd.room.join", payload, timeout=2, headers=headers)
        assert failed.headers["Nats-Service-Error-Code"] == "500"
        assert json.loads(failed.data)["error"]["code"] == "internal"
        assert "boom" not in failed.data.decode()  # internals are logged, not sent
        assert metrics.unexpected_errors.labels("room")._value.get() == 1
        assert metrics.commands.labels("room", "join", "500")._value.get() == 1

        answered = await nc.request("ringlog.cmd.room.join", payload, timeout=2, headers=headers)
        assert "Nats-Service-Error-Code" not in (answered.headers or {})
        assert json.loads(answered.data) == {"callID": "c1", "eventIDs": []}
        assert answered.headers["Content-Type"] == "application/json"

        stats = json.loads((await nc.request("$SRV.STATS.ringlog-room", b"", timeout=2)).data)
        join = stats["endpoints"][0]
        assert join["name"] == "join" and join["num_requests"] == 2
        if sink_client:  # micro's path counts only handlers that raise; ours answers every failure
            assert join["num_errors"] == 1 and join["last_error"].startswith("500")
            assert join["processing_time"] > 0
    finally:
        await micro.stop()
        await nc.close()
