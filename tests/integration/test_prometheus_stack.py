"""A real Prometheus scraping a real `ringlog up`.

One stack per module: `ringlog up` as a subprocess (its own NATS port and metrics ports),
Debian's `prometheus` on a free loopback port scraping every process each second with the
deployed alert rules, and calls driven through `ringlog.client.Client`. Then: the call
figures read back with PromQL, the rules loaded and healthy, every Grafana panel
answering with data, and `promtool check metrics` on every process's /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from ringlog.client import Client, Conflict
from ringlog.natsserver import free_port
from tests.integration.harness import env_without_ringlog_settings
from tests.integration.test_prometheus_support import (
    DASHBOARD_PANELS, PROJECTION_METRICS, PrometheusServer, free_port_block, metric_names, scrape,
)

PROMTOOL = shutil.which("promtool")
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy",
         "kate", "leo", "mia", "ned", "oli", "pat")
ABANDON_AFTER = 2  # seconds, so the abandoned call happens within the test

# What the traffic below must leave behind, summed over all processes.
EXPECTED = {
    'sum(ringlog_call_outcomes_total{outcome="answered"})': 3,
    'sum(ringlog_call_outcomes_total{outcome="declined"})': 1,
    'sum(ringlog_call_outcomes_total{outcome="busy"})': 1,
    'sum(ringlog_call_outcomes_total{outcome="canceled"})': 1,
    'sum(ringlog_call_outcomes_total{outcome="missed"})': 1,
    'sum(ringlog_call_outcomes_total{outcome="abandoned"})': 1,
    "sum(ringlog_invitations_ringing)": 1,
    "sum(ringlog_calls_active)": 1,
    "sum(ringlog_room_members)": 2,
    "sum(ringlog_call_setup_seconds_count)": 3,
    "sum(ringlog_call_talk_seconds_count)": 2,
    'sum(ringlog_device_exceptions_total{device="camera", type="permissionNotGranted"})': 1,
    'sum(ringlog_device_exceptions_total{device="microphone", type="soundLevelTooLow"})': 1,
    'sum(ringlog_events_published_total{callback="onOutgoingCallAccepted"})': 3,
    'sum(ringlog_commands_total{service="invitation", verb="accept", outcome="409"})': 1,
    'sum(ringlog_commands_total{service="room", verb="join", outcome="ok"})': 5,
    "sum(ringlog_relay_backlog_events)": 0,
}


@dataclass
class Stack:
    data: Path
    nats_url: str
    metrics_ports: dict[str, int]  # process name -> /metrics port, as `ringlog up` printed them


@pytest_asyncio.fixture(scope="module")
async def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("ringlog-up")
    nats_port, base = free_port(), free_port_block(4)
    env = env_without_ringlog_settings()
    env["RINGLOG_ABANDON_AFTER_SECONDS"] = str(ABANDON_AFTER)
    up = subprocess.Popen(
        [sys.executable, "-m", "ringlog", "up", "--data", str(data), "--nats-port", str(nats_port),
         "--metrics-base-port", str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: list[str] = []
    try:
        loop = asyncio.get_running_loop()
        while not any(line.startswith("Ctrl-C") for line in lines):
            line = await asyncio.wait_for(loop.run_in_executor(None, up.stdout.readline), 60)
            assert line, f"ringlog up exited early: {''.join(lines)}"
            lines.append(line)
        ports = {m[1]: int(m[2]) for line in lines if (m := re.match(r"\s+(\S+)\s+metrics http://[^:]+:(\d+)/", line))}
        yield Stack(data, f"nats://127.0.0.1:{nats_port}", ports)
    finally:
        up.send_signal(signal.SIGTERM)
        await asyncio.get_running_loop().run_in_executor(None, up.communicate, None)


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    """Checked before the stack starts, so a machine without Prometheus skips at once."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (CI installs Debian's `prometheus` package)")
    return binary


@pytest_asyncio.fixture(scope="module")
async def prometheus(prometheus_binary, stack, tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), prometheus_binary)
    server.start(stack.metrics_ports, RULES)
    try:
        await server.wait_until('count(up{job="ringlog"} == 1)', len(stack.metrics_ports), timeout=20)
        yield server
    finally:
        server.stop()


async def tokens_for(stack: Stack) -> dict[str, str]:
    async def one(user: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ringlog", "token", user, "--data", str(stack.data), stdout=subprocess.PIPE)
        out, _ = await process.communicate()
        return out.decode().strip()

    return dict(zip(USERS, await asyncio.gather(*(one(user) for user in USERS))))


@pytest_asyncio.fixture(scope="module")
async def traffic(stack):
    """Drive one call of each outcome, leave one call active and one invitation ringing."""
    tokens = await tokens_for(stack)
    client = await Client.connect(stack.nats_url)
    as_ = {user: client.with_token(token) for user, token in tokens.items()}
    try:
        talk = (await as_["alice"].send_invitation("alice", ["bob"])).callID  # answered, joined, hung up
        await asyncio.sleep(0.2)
        await as_["bob"].accept(talk, "bob")
        await as_["alice"].join(talk, "alice")
        await as_["bob"].join(talk, "bob")
        await as_["bob"].device_report(talk, "bob", camera_exception="permissionNotGranted")
        await as_["alice"].hang_up(talk, "alice")

        declined = (await as_["carol"].send_invitation("carol", ["dave"])).callID
        await as_["dave"].decline(declined, "dave")
        busy = (await as_["erin"].send_invitation("erin", ["frank"])).callID
        await as_["frank"].decline(busy, "frank", reason="busy")
        canceled = (await as_["gina"].send_invitation("gina", ["hank"])).callID
        await as_["gina"].cancel(canceled, "gina")
        with pytest.raises(Conflict):
            await as_["hank"].accept(canceled, "hank")  # too late: 409
        await as_["ivan"].send_invitation("ivan", ["judy"], timeout_seconds=1)  # missed

        abandoned = (await as_["kate"].send_invitation("kate", ["leo"])).callID  # leo never joins
        await as_["leo"].accept(abandoned, "leo")
        await as_["kate"].join(abandoned, "kate")

        active = (await as_["mia"].send_invitation("mia", ["ned"], "videoCall")).callID  # still in progress
        await as_["ned"].accept(active, "ned")
        await as_["mia"].join(active, "mia")
        await as_["ned"].join(active, "ned")
        await as_["mia"].device_report(active, "mia", microphone_exception="soundLevelTooLow")
        await as_["oli"].send_invitation("oli", ["pat"], timeout_seconds=600)  # still ringing
    finally:
        await client.close()
    # the timeout and the abandon happen on the services' own clocks
    deadline = asyncio.get_running_loop().time() + ABANDON_AFTER + 10
    while asyncio.get_running_loop().time() < deadline:
        missed = scrape(stack.metrics_ports["invitation"]).get(("ringlog_call_outcomes_total", (("outcome", "missed"),)))
        gone = scrape(stack.metrics_ports["room"]).get(("ringlog_call_outcomes_total", (("outcome", "abandoned"),)))
        if missed and gone:
            return EXPECTED
        await asyncio.sleep(0.2)
    raise AssertionError("the missed and abandoned calls did not happen in time")


async def test_prometheus_reads_back_the_call_figures(prometheus, traffic, stack):
    for query, expected in traffic.items():
        await prometheus.wait_until(query, expected)
    if "projections" in stack.metrics_ports:  # the projector catches up with everything published
        await prometheus.wait_until("max(ringlog_projection_lag_events)", 0)
    setup = await prometheus.value("sum(ringlog_call_setup_seconds_sum)")
    assert 0.2 <= setup < 30, "alice's call was accepted 0.2 s after the invitation"
    await prometheus.wait_until('sum(ringlog_command_duration_seconds_count{service="room"})', 6)  # 5 joins, 1 hang-up
    slowest = await prometheus.value(  # the verbs' series exist at 0 from the start, so rate() sees every command
        'histogram_quantile(1, sum by (le) (rate(ringlog_command_duration_seconds_bucket{service="room"}[5m])))')
    assert 0 < slowest <= 2.5


async def test_the_alert_rules_are_loaded_and_evaluate_cleanly(prometheus, traffic):
    deployed = set(re.findall(r"- alert: (\w+)", RULES.read_text()))

    async def rules() -> list[dict]:
        groups = (await prometheus.api("rules"))["groups"]
        return [rule for group in groups for rule in group["rules"]]

    for _ in range(50):
        loaded = await rules()
        if loaded and all(rule["health"] == "ok" for rule in loaded):
            break
        await asyncio.sleep(0.2)
    assert {rule["name"] for rule in loaded} == deployed
    assert [rule for rule in loaded if rule["health"] != "ok"] == []
    firing = [alert for alert in (await prometheus.api("alerts"))["alerts"] if alert["state"] == "firing"]
    assert firing == []


async def test_every_metric_the_rules_and_dashboard_name_is_scraped(prometheus, traffic, stack):
    scraped = set(await prometheus.api("label/__name__/values"))
    named = metric_names(RULES.read_text()) | metric_names(json.dumps(DASHBOARD_PANELS))
    if "projections" not in stack.metrics_ports:
        named -= PROJECTION_METRICS
    assert named - scraped == set()


@pytest.mark.parametrize("panel", DASHBOARD_PANELS, ids=[panel["title"] for panel in DASHBOARD_PANELS])
async def test_dashboard_panel_has_data(prometheus, traffic, stack, panel):
    exprs = [target["expr"] for target in panel["targets"]]
    if "projections" not in stack.metrics_ports and any(metric_names(expr) & PROJECTION_METRICS for expr in exprs):
        pytest.skip("the projector is not part of `ringlog up` yet (projections/main.py): no projection lag to show")
    for expr in exprs:
        query = expr.replace("$__rate_interval", "5m").replace("$__range", "5m").replace("$__interval", "5s")
        result = await prometheus.api("query", query=query)
        assert result["result"], f"panel {panel['title']!r}: no data for {query}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (CI installs Debian's `prometheus` package)")
async def test_promtool_check_metrics_on_every_process(stack, traffic):
    assert {"invitation", "room", "device"} <= set(stack.metrics_ports)
    for name, port in stack.metrics_ports.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            exposition = response.read()
        assert b"ringlog_" in exposition, name
        checked = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition, capture_output=True, timeout=30)
        assert checked.returncode == 0 and not checked.stdout.strip(), (name, checked.stdout, checked.stderr)
