"""The embedded nats-server: started at the niceness it is given (`ringlog up` shares cores with it)."""

import os
from pathlib import Path

import pytest

from ringlog.natsserver import NatsServer, check_nice


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.parametrize("nice", [0, 7])
def test_the_server_runs_that_much_nicer_than_its_parent(tmp_path, nice):
    with NatsServer(tmp_path / "nats", nice=nice) as server:
        threads = list(Path(f"/proc/{server.process.pid}/task").iterdir())
        assert len(threads) > 1
        assert {niceness(int(thread.name)) for thread in threads} == {niceness(os.getpid()) + nice}


@pytest.mark.parametrize("nice", [-1, 20])
def test_a_niceness_that_would_raise_the_priority_or_is_out_of_range_is_refused(tmp_path, nice):
    with pytest.raises(ValueError, match=r"--nats-nice \(RINGLOG_NATS_NICE\) must be 0-19"):
        NatsServer(tmp_path / "nats", nice=nice)
    assert check_nice(19) == 19
