"""Helpers of the Prometheus stack tests (no tests here): a Prometheus server process, its
HTTP API, scrapes, ports, and the dashboard's panels."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "ringlog.json").read_text())
DASHBOARD_PANELS = [panel for panel in DASHBOARD["panels"] if panel.get("targets")]
PROJECTION_METRICS = frozenset({"ringlog_projection_lag_events", "ringlog_projection_lag_seconds"})


def metric_names(text: str) -> set[str]:
    """The ringlog metric names a PromQL expression (or any text) mentions."""
    return set(re.findall(r"\bringlog_[a-z_]+[a-z]", text))


def free_port_block(count: int) -> int:
    """A base port with `count` free consecutive ports after it (for --metrics-base-port)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no block of {count} free ports")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One /metrics scrape: (sample name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


class PrometheusServer:
    """Debian's `prometheus` on a free loopback port, a temporary store, 1 s scrapes."""

    def __init__(self, workdir: Path, binary: str):
        self.binary = binary
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen | None = None

    def write_config(self, targets: dict[str, int], rules: Path) -> Path:
        config = {  # JSON is YAML
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{
                "job_name": "ringlog",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"process": name}}
                                   for name, port in targets.items()],
            }],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self, targets: dict[str, int], rules: Path) -> None:
        config = self.write_config(targets, rules)
        self.port = free_port_of_loopback()
        self.log = open(self.workdir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def _get(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    async def api(self, path: str, **params: str):
        """GET /api/v1/<path>; the `data` of a successful answer."""
        return await asyncio.get_running_loop().run_in_executor(None, lambda: self._get(path, **params))

    async def value(self, query: str) -> float | None:
        """An instant query's single value (None when the result is empty)."""
        result = (await self.api("query", query=query))["result"]
        assert len(result) <= 1, f"{query} gave {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    async def wait_until(self, query: str, expected: float, timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        seen = None
        while asyncio.get_running_loop().time() < deadline:
            self._check_alive()
            try:
                seen = await self.value(query)
            except OSError:  # not listening yet
                seen = None
            if seen is not None and math.isclose(seen, expected):
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"{query}: expected {expected}, Prometheus says {seen}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            log = (self.workdir / "prometheus.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{log}")


def free_port_of_loopback() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
