"""Slow suites (`make test-slow`): a soak under simulated clients, and the benchmarks' own checks."""

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run_json(*args: str, timeout: float) -> tuple[int, dict, str]:
    done = subprocess.run([sys.executable, "-m", "ringlog", *args, "--json"], capture_output=True, text=True,
                          timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, json.loads(lines[-1]) if lines else {}, done.stdout + done.stderr


def test_soak_two_minutes_of_simulated_clients_lose_nothing():
    code, summary, output = run_json("simulate", "--embedded", "--users", "400", "--rate", "25",
                                     "--duration", "120", "--quiet", "--seed", "11", timeout=600)
    assert code == 0, output
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["errors"] == 0
    assert summary["calls"] > 2000


def test_bench_flows_loses_and_duplicates_nothing():
    code, figures, output = run_json("bench", "flows", "--runs", "1", "--duration", "5", timeout=600)
    assert code == 0, output
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["failed_flows"] == 0
    assert 0 < figures["ratio"] < 1
    assert figures["disk_fsyncs"] > 0 and figures["disk_fsync_p50_ms"] <= figures["disk_fsync_max_ms"]
    for phase in ("full_load_cpu_percent", "half_load_cpu_percent"):  # every process measured, each busy
        assert set(figures[phase]) >= {"invitation", "room", "device", "load generator", "nats-server"}
        assert all(percent > 0 for percent in figures[phase].values()), figures[phase]
