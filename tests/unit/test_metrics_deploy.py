"""The deployed Prometheus config, alert rules and Grafana dashboard, checked by promtool
where it is installed, and against the metrics the code registers and docs/metrics.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from projections.metrics import ProjectionMetrics
from services.runtime.call_metrics import DeviceMetrics, InvitationMetrics, RoomMetrics
from services.runtime.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "ringlog.json").read_text())
DOCS = (ROOT / "docs" / "metrics.md").read_text()
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (CI installs Debian's `prometheus` package)")


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, cwd=ROOT, timeout=60)


def all_registered() -> tuple[CollectorRegistry, ...]:
    """Every family the processes register, with a sample in each labelled one of ours. The
    room's and the projector's families are on registries of their own, as in their processes."""
    registry = CollectorRegistry()
    service = ServiceMetrics("invitation", registry)
    service.declare_verbs(["send"])
    service.events_published.labels("invitation", "onOutgoingCallSent").inc()
    InvitationMetrics(registry)
    DeviceMetrics(registry).exceptions.labels("camera", "unspecified").inc()
    room_registry = CollectorRegistry()
    RoomMetrics(room_registry)
    return registry, room_registry, ProjectionMetrics().registry


def metric_names(text: str) -> set[str]:
    names = set(re.findall(r"\bringlog_[a-z_]+[a-z]", text))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def registered_names() -> set[str]:
    names = set()
    for registry in all_registered():
        names |= {family.name + ("_total" if family.type == "counter" else "") for family in registry.collect()}
    return {name for name in names if name.startswith("ringlog_")}


@needs_promtool
def test_promtool_accepts_the_prometheus_config():
    checked = promtool("check", "config", "deploy/prometheus/prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_promtool_accepts_the_alert_rules_and_their_unit_tests_pass():
    checked = promtool("check", "rules", "deploy/prometheus/alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "deploy/prometheus/alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_promtool_lints_every_metric_family_clean():
    for registry in all_registered():
        checked = promtool("check", "metrics", stdin=generate_latest(registry))
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


def test_the_scrape_config_targets_ringlog_ups_default_ports():
    config = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    targets = re.findall(r'"127\.0\.0\.1:(\d+)"\]\s+labels:\s+process: (\w+)', config)
    assert targets == [("9310", "invitation"), ("9311", "room"), ("9312", "device"), ("9313", "projections")]


def test_every_dashboard_panel_queries_prometheus_through_the_datasource_variable():
    panels = DASHBOARD["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    graphs = [panel for panel in panels if panel["type"] != "row"]
    assert graphs and all(panel["targets"] and all(t["expr"].strip() for t in panel["targets"]) for panel in graphs)
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in graphs)
    assert all(0 <= panel["gridPos"]["x"] and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24 for panel in panels)
    assert [v["name"] for v in DASHBOARD["templating"]["list"]] == ["datasource"]


def test_the_dashboard_covers_the_issue():
    text = json.dumps(DASHBOARD)
    for name in ("ringlog_call_outcomes_total", "ringlog_calls_active", "ringlog_call_setup_seconds_bucket",
                 "ringlog_command_duration_seconds_bucket", "ringlog_relay_backlog_events",
                 "ringlog_projection_lag_seconds", "ringlog_unexpected_errors_total",
                 "ringlog_device_exceptions_total"):
        assert name in text, name


def test_rules_dashboard_and_docs_name_only_metrics_that_exist():
    known = registered_names()
    for source in ((PROMETHEUS_DIR / "alerts.yml").read_text(), json.dumps(DASHBOARD), DOCS):
        assert metric_names(source) - known == set()


def test_the_docs_list_every_metric_and_explain_every_alert():
    missing = registered_names() - metric_names(DOCS)
    assert not missing, f"add these to docs/metrics.md: {sorted(missing)}"
    alerts = re.findall(r"- alert: (\w+)", (PROMETHEUS_DIR / "alerts.yml").read_text())
    runbooks = set(re.findall(r"docs/metrics\.md#([a-z]+)", (PROMETHEUS_DIR / "alerts.yml").read_text()))
    headings = {re.sub(r"[^a-z]", "", line.lower()) for line in DOCS.splitlines() if line.startswith("### ")}
    assert runbooks <= headings, runbooks - headings
    assert all(alert in DOCS for alert in alerts)
