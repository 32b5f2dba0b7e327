"""The disk probe of `bench flows`: its summary, and a real child process on a real file;
the wait for a settled disk of `bench scale`."""

import time

from ringlog.bench.disk import STALL_MS, FsyncProbe, settle, summarize


def test_the_summary_counts_stalls_and_orders_the_figures():
    waits = [0.2] * 97 + [5.0, STALL_MS + 1, 150.0]
    figures = summarize(waits)
    assert figures["disk_fsyncs"] == 100
    assert figures["disk_fsync_p50_ms"] == 0.2
    assert figures["disk_fsync_p50_ms"] <= figures["disk_fsync_p99_ms"] <= figures["disk_fsync_max_ms"] == 150.0
    assert figures["disk_fsync_stalls"] == 2


def test_no_samples_give_no_figures():
    assert summarize([]) == {"disk_fsyncs": 0, "disk_fsync_p50_ms": None, "disk_fsync_p99_ms": None,
                             "disk_fsync_max_ms": None, "disk_fsync_stalls": 0}


def test_the_probe_fsyncs_a_file_in_the_folder_until_stopped(tmp_path):
    probe = FsyncProbe(tmp_path, interval=0.005).start()
    time.sleep(1.0)
    figures = probe.stop()
    assert figures["disk_fsyncs"] >= 10
    assert 0 < figures["disk_fsync_p50_ms"] <= figures["disk_fsync_max_ms"]
    assert not list(tmp_path.iterdir())  # its file is gone


def test_settle_returns_once_the_fsyncs_stayed_quick_for_the_quiet_time(tmp_path):
    took = settle(tmp_path, threshold_ms=10_000, quiet_seconds=0.2, timeout=10)
    assert 0.2 <= took < 5
    assert not list(tmp_path.iterdir())


def test_settle_gives_up_at_its_timeout_on_a_disk_that_never_calms(tmp_path):
    took = settle(tmp_path, threshold_ms=0, quiet_seconds=0.2, timeout=0.3)  # every fsync counts as slow
    assert 0.3 <= took < 2
    assert not list(tmp_path.iterdir())
