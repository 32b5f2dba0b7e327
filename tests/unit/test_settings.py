"""RINGLOG_* settings: numbers parse, anything else is refused with the variable's name."""

import pytest

from ringlog.cli import main
from services.runtime.config import SettingError, Settings


def test_numeric_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RINGLOG_NATS_NICE", "5")
    monkeypatch.setenv("RINGLOG_FLUSH_INTERVAL_MS", "2.5")
    settings = Settings()
    assert (settings.nats_nice, settings.flush_interval_ms) == (5, 2.5)


@pytest.mark.parametrize("name, value, says", [
    ("RINGLOG_METRICS_PORT", "x", "RINGLOG_METRICS_PORT must be an integer, got 'x'"),
    ("RINGLOG_NATS_NICE", "1.5", "RINGLOG_NATS_NICE must be an integer, got '1.5'"),
    ("RINGLOG_HOOK_TIMEOUT_SECONDS", "soon", "RINGLOG_HOOK_TIMEOUT_SECONDS must be a number, got 'soon'"),
])
def test_a_setting_that_is_not_a_number_is_refused_by_name(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingError, match=says):
        Settings()


def test_the_command_line_reports_it_without_a_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RINGLOG_STREAM_REPLICAS", "three")
    with pytest.raises(SystemExit) as exit:
        main(["token", "alice", "--data", str(tmp_path)])
    assert exit.value.code == 2
    assert capsys.readouterr().err == "ringlog token: RINGLOG_STREAM_REPLICAS must be an integer, got 'three'\n"
