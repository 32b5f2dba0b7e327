"""`Supervisor.wait_ready` (ringlog up, simulate --embedded, the benchmarks) against a real
nats-server: when each child answers, a child that dies, a child that never answers."""

import asyncio
import subprocess
import sys
import time

import nats
import pytest

from ringlog.up import Supervisor


def supervisor_of(settings, children: dict[str, list[str]]) -> Supervisor:
    """A supervisor whose children are the given commands (stand-ins for the services)."""
    supervisor = Supervisor(settings, settings.nats_url, 0, 0, processes=list(children))
    supervisor.children = {name: subprocess.Popen(command) for name, command in children.items()}
    return supervisor


@pytest.fixture
def stand_ins():
    made: list[Supervisor] = []
    yield made
    for supervisor in made:
        for child in supervisor.children.values():
            child.kill()
            child.wait()


async def answer_pings(url: str, name: str, after: float):
    """Answer `$SRV.PING.ringlog-<name>` from `after` seconds on, as a started service does."""
    await asyncio.sleep(after)
    nc = await nats.connect(url)

    async def pong(message):
        await message.respond(b"{}")

    await nc.subscribe(f"$SRV.PING.ringlog-{name}", cb=pong)
    await nc.flush()
    return nc


async def test_returns_when_each_child_first_answered(settings, stand_ins):
    supervisor = supervisor_of(settings, {"early": [sys.executable, "-c", "import time; time.sleep(30)"],
                                          "late": [sys.executable, "-c", "import time; time.sleep(30)"]})
    stand_ins.append(supervisor)
    early = await answer_pings(settings.nats_url, "early", 0.0)
    late = asyncio.create_task(answer_pings(settings.nats_url, "late", 0.5))  # starts while it polls
    try:
        ready = await supervisor.wait_ready(settings.nats_url, timeout=10, poll=0.02)
    finally:
        await early.close()
        await (await late).close()
    assert set(ready) == {"early", "late"}
    assert ready["late"] - ready["early"] >= 0.3  # "late" was asked again until it answered


async def test_a_child_that_exits_is_named_at_once(settings, stand_ins):
    supervisor = supervisor_of(settings, {"broken": [sys.executable, "-c", "raise SystemExit(3)"]})
    stand_ins.append(supervisor)
    supervisor.children["broken"].wait()
    with pytest.raises(RuntimeError, match=r"broken exited with 3; see .*broken\.log"):
        await supervisor.wait_ready(settings.nats_url, timeout=10)


async def test_a_child_that_never_answers_times_out_by_name(settings, stand_ins):
    supervisor = supervisor_of(settings, {"silent": [sys.executable, "-c", "import time; time.sleep(30)"]})
    stand_ins.append(supervisor)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"not ready within 1s: silent"):
        await supervisor.wait_ready(settings.nats_url, timeout=1.0, poll=0.05)
    assert time.monotonic() - started < 5

