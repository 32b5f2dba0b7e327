"""`ringlog up` from the outside: ready line, a command through it, clean stop, no orphans."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ringlog.client import Client
from ringlog.natsserver import free_port
from tests.integration.harness import env_without_ringlog_settings


def child_pids(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        for child in map(int, children):
            found |= {child} | child_pids(child)
    return found


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_up_runs_everything_and_stops_cleanly(tmp_path, stop_signal):
    port = free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "ringlog", "up", "--data", str(tmp_path), "--nats-port", str(port), "--metrics-base-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env_without_ringlog_settings(),
    )
    try:
        lines = []
        loop = asyncio.get_running_loop()
        while not any(line.startswith("ringlog ready") for line in lines):
            line = await asyncio.wait_for(loop.run_in_executor(None, up.stdout.readline), 60)
            assert line, f"ringlog up exited early: {''.join(lines)}"
            lines.append(line)
        assert f"nats://127.0.0.1:{port}" in lines[-1]
        processes = child_pids(up.pid)
        assert len(processes) >= 2  # nats-server and at least the invitation service
        servers = [pid for pid in processes if Path(f"/proc/{pid}/comm").read_text().strip() == "nats-server"]
        assert len(servers) == 1
        assert niceness(servers[0]) == niceness(up.pid) + 10  # the default RINGLOG_NATS_NICE

        token = subprocess.run(
            [sys.executable, "-m", "ringlog", "token", "alice", "--data", str(tmp_path)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        client = await Client.connect(f"nats://127.0.0.1:{port}", token)
        reply = await client.command("invitation", "send", {"caller": {"id": "alice"}, "callees": [{"id": "bob"}], "callType": "voiceCall"})
        assert len(reply["eventIDs"]) == 2
        await client.close()
    finally:
        up.send_signal(stop_signal)
        output = await asyncio.get_running_loop().run_in_executor(None, up.communicate, None)
    assert up.returncode == 0, output
    assert "ringlog stopped." in output[0]
    await asyncio.sleep(0.2)
    assert not [pid for pid in processes if alive(pid)], "orphaned processes after ringlog up stopped"


@pytest.mark.parametrize("flag, env, named", [
    (["--nats-nice", "20"], {}, "--nats-nice (RINGLOG_NATS_NICE) must be 0-19"),
    (["--nats-nice", "-1"], {}, "--nats-nice (RINGLOG_NATS_NICE) must be 0-19"),
    ([], {"RINGLOG_NATS_NICE": "low"}, "RINGLOG_NATS_NICE must be an integer, got 'low'"),
])
def test_up_refuses_a_bad_nats_niceness_before_starting_anything(tmp_path, flag, env, named):
    done = subprocess.run(
        [sys.executable, "-m", "ringlog", "up", "--data", str(tmp_path / "data"), "--nats-port", str(free_port()), *flag],
        capture_output=True, text=True, env={**env_without_ringlog_settings(), **env}, timeout=60,
    )
    assert done.returncode == 2
    assert named in done.stderr
    assert not (tmp_path / "data").exists()  # nothing started, nothing written
