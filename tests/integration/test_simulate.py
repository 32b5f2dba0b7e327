"""`ringlog simulate` against real services: a short run checks out, and the command line works."""

import json
import subprocess
import sys

from ringlog.simulation.mix import OUTCOMES, parse_mix
from ringlog.simulation.run import Options, simulate
from ringlog.simulation.scripts import Timing
from tests.integration.harness import SECRET

SUMMARY_KEYS = {"calls", "commands", "events", "lost", "duplicated", "errors", "cmd_p50_ms", "cmd_p99_ms", "duration_s"}


async def test_a_short_simulation_loses_and_duplicates_nothing_and_plays_every_outcome(services, settings):
    await services("invitation", "room", "device")
    options = Options(
        users=40, rate=5, duration=3, arrivals="even", seed=7, quiet=True,
        mix=parse_mix("accept=2,decline=1,busy=1,timeout=1,cancel=1,group=1"),
        timing=Timing(ring_timeout=2, talk=(0.2, 0.8)),
    )
    result = await simulate(settings.nats_url, SECRET, options)
    summary = result.summary
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["unexpected"] == 0, result.verdict.rows
    assert summary["errors"] == 0, result.stats.examples
    assert result.ok
    assert summary["calls"] == 15 and summary["calls_finished"] == 15 and summary["calls_skipped"] == 0
    assert all(summary["outcomes"][outcome] >= 2 for outcome in OUTCOMES), summary["outcomes"]
    assert summary["events"] == summary["expected_events"] > 15 * 5
    assert summary["commands"] > 15 * 3
    assert 0 < summary["cmd_p50_ms"] <= summary["cmd_p99_ms"]
    assert SUMMARY_KEYS <= set(summary) and json.loads(json.dumps(summary)) == summary
    rows = result.verdict.rows
    for callback in ("onOutgoingCallSent", "onOutgoingCallAccepted", "onOutgoingCallDeclined",
                     "onOutgoingCallRejectedCauseBusy", "onOutgoingCallTimeout", "onIncomingCallCanceled",
                     "onCallEnd", "onMicrophoneStateChanged"):
        assert rows[callback].expected > 0 and rows[callback].stream == rows[callback].live == rows[callback].expected
    assert rows["onOutgoingCallTimeout"].expected >= summary["outcomes"]["timeout"]


async def test_refused_commands_fail_the_run_and_are_reported(services, settings):
    await services("invitation", "room", "device")
    options = Options(users=6, rate=4, duration=0.5, arrivals="even", quiet=True, mix=parse_mix("accept=1"))
    result = await simulate(settings.nats_url, "not-the-secret-" + "x" * 32, options)
    assert not result.ok
    assert result.summary["errors"] == result.summary["calls_failed"] == 2
    assert result.stats.errors == {"invitation.send 401 unauthenticated": 2}
    assert "invalid token" in result.stats.examples["invitation.send 401 unauthenticated"]
    assert result.summary["lost"] == result.summary["events"] == 0


def test_the_command_line_runs_an_embedded_simulation_and_prints_the_summary_last():
    finished = subprocess.run(
        [sys.executable, "-m", "ringlog", "simulate", "--embedded", "--duration", "3", "--json", "--seed", "3"],
        capture_output=True, timeout=90,
    )
    stdout, stderr = finished.stdout.decode(), finished.stderr.decode()
    assert finished.returncode == 0, stdout + stderr
    lines = stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert SUMMARY_KEYS <= set(summary)
    assert summary["calls"] > 0 and summary["lost"] == 0 and summary["duplicated"] == 0 and summary["errors"] == 0
    assert any(line.startswith("  result    OK") for line in lines)
    assert "\rrunning" in stderr and "cmd/s" in stderr  # the progress line, refreshed in place
