"""`ringlog up`: embedded nats-server plus every service as a child process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from ringlog.natsserver import NatsServer, die_with_parent, free_port
from services.runtime.config import Settings

PROCESSES = ("invitation", "room", "device", "projections")
MODULES = {
    "invitation": "services.invitation.main",
    "room": "services.room.main",
    "device": "services.device.main",
    "projections": "projections.main",
}


def available_processes() -> list[str]:
    import importlib.util

    return [name for name in PROCESSES if importlib.util.find_spec(MODULES[name]) is not None]


class Supervisor:
    def __init__(self, settings: Settings, nats_url: str | None, nats_port: int, metrics_base_port: int,
                 processes: list[str] | None = None):
        self.settings = settings
        self.processes = processes if processes is not None else available_processes()
        self.external_nats = nats_url
        self.nats_port = nats_port
        self.metrics_base_port = metrics_base_port
        self.nats: NatsServer | None = None
        self.children: dict[str, subprocess.Popen] = {}
        self.metrics_ports: dict[str, int] = {}

    def start(self) -> str:
        data = self.settings.data_dir.resolve()
        data.mkdir(parents=True, exist_ok=True)
        if self.external_nats:
            url = self.external_nats
        else:
            self.nats = NatsServer(data / "nats", port=self.nats_port, nice=self.settings.nats_nice).start()
            url = self.nats.url
        secret = self.settings.secret()
        for index, name in enumerate(self.processes):
            port = self.metrics_base_port + index if self.metrics_base_port else free_port()
            self.metrics_ports[name] = port
            env = {
                **os.environ,
                "RINGLOG_NATS_URL": url,
                "RINGLOG_DATA": str(data),
                "RINGLOG_PREFIX": self.settings.prefix,
                "RINGLOG_TOKEN_SECRET": secret,
                "RINGLOG_METRICS_PORT": str(port),
            }
            log = open(data / f"{name}.log", "ab")
            self.children[name] = subprocess.Popen(
                [sys.executable, "-m", "ringlog", "serve", name],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        return url

    async def wait_ready(self, url: str, timeout: float = 60.0, poll: float = 0.2) -> dict[str, float]:
        """Every service answers `$SRV.PING` (the projector too, when present), each asked
        again every `poll` seconds until it does; returns when each first answered
        (`time.perf_counter()`)."""
        nc = await nats.connect(url)
        ready: dict[str, float] = {}
        try:
            deadline = time.monotonic() + timeout
            while len(ready) < len(self.children):
                for name, child in self.children.items():
                    if name in ready:
                        continue
                    if child.poll() is not None:
                        raise RuntimeError(f"{name} exited with {child.returncode}; see {self.settings.data_dir}/{name}.log")
                    try:
                        await nc.request(f"$SRV.PING.ringlog-{name}", b"", timeout=0.5)
                        ready[name] = time.perf_counter()
                    except (NoRespondersError, NatsTimeout):
                        pass  # not answering yet
                if len(ready) < len(self.children):
                    if time.monotonic() > deadline:
                        waiting = ", ".join(sorted(set(self.children) - set(ready)))
                        raise RuntimeError(f"not ready within {timeout:.0f}s: {waiting}")
                    await asyncio.sleep(poll)
            return ready
        finally:
            await nc.close()

    def stop(self, timeout: float = 10.0) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self.nats is not None:
            self.nats.stop()

    def failed_child(self) -> str | None:
        for name, child in self.children.items():
            if child.poll() is not None:
                return name
        return None


def run_up(settings: Settings, nats_url: str | None, nats_port: int, metrics_base_port: int) -> int:
    supervisor = Supervisor(settings, nats_url, nats_port, metrics_base_port)
    stopping = {"flag": False}

    def request_stop(signum, frame) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        url = supervisor.start()
        asyncio.run(supervisor.wait_ready(url))
        data = Path(settings.data_dir).resolve()
        print(f"ringlog ready: NATS {url}, data in {data}", flush=True)
        for name, port in supervisor.metrics_ports.items():
            print(f"  {name:<12} metrics http://{settings.metrics_host}:{port}/metrics", flush=True)
        print(f"  tail the log:  ringlog tail --nats {url}", flush=True)
        print(f"  a token:       ringlog token alice --data {data}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while not stopping["flag"]:
            failed = supervisor.failed_child()
            if failed:
                print(f"{failed} exited; stopping (see {data}/{failed}.log)", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        return 0
    except RuntimeError as error:
        print(f"ringlog up failed: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        supervisor.stop()
        print("ringlog stopped.", flush=True)
