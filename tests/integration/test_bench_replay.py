"""`ringlog bench replay` end to end at a tiny size: runs side by side, medians, the JSON last."""

import json
import statistics
import subprocess
import sys
from tests.integration.harness import env_without_ringlog_settings


def run_bench_replay(*args: str) -> subprocess.CompletedProcess:
    env = env_without_ringlog_settings()
    return subprocess.run([sys.executable, "-m", "ringlog", "bench", "replay", *args], capture_output=True,
                          text=True, timeout=240, env=env)


def test_bench_replay_reports_the_median_of_its_runs_and_prints_the_json_last():
    done = run_bench_replay("--events", "3000", "--runs", "3", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["events"] == 3000 and figures["runs"] == 3 and len(figures["ratios"]) == 3
    assert figures["ratio"] == statistics.median(figures["ratios"]) and all(r > 0 for r in figures["ratios"])
    assert figures["raw_read_per_s"] > 0 and figures["rebuild_per_s"] > 0
    assert done.stderr.count("rebuild:   3,000 events") == 3  # every run rebuilt the whole log
    assert "medians of 3 runs" in done.stderr


def test_bench_replay_refuses_fewer_than_one_run():
    done = run_bench_replay("--events", "10", "--runs", "0")
    assert done.returncode != 0 and "--runs must be at least 1" in done.stderr
