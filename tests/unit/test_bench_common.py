"""The benchmarks' CPU meter reads /proc: a busy process shows up busy, a gone one is left out."""

import os
import sys
import time

import pytest

from ringlog.bench.common import CpuMeter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_a_busy_process_uses_most_of_a_core_and_an_unknown_pid_is_left_out():
    meter = CpuMeter({"me": os.getpid(), "gone": 2**22 + 12345})
    meter.start()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        sum(range(1000))
    figures = meter.percent()
    assert set(figures) == {"me"}
    assert 50 <= figures["me"] <= 110


def test_an_idle_process_uses_little():
    meter = CpuMeter({"me": os.getpid()})
    meter.start()
    time.sleep(0.5)
    assert meter.percent()["me"] < 20
