"""The disk probe of `bench flows`: its summary, and a real child process on a real file."""

import time

from ringlog.bench.disk import STALL_MS, FsyncProbe, summarize


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
