"""Settings of a ringlog process, from RINGLOG_* environment variables (flags override)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from schemas.subjects import DEFAULT_PREFIX


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"RINGLOG_{name}", default)


class SettingError(ValueError):
    """A RINGLOG_* setting that cannot be used; the message names it."""


def _env_number(name: str, default: str, kind: type = int):
    """A numeric RINGLOG_* setting; a value that is not one is refused with the variable's name."""
    value = _env(name, default)
    try:
        return kind(value)
    except ValueError:
        raise SettingError(f"RINGLOG_{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None


@dataclass
class Settings:
    nats_url: str = field(default_factory=lambda: _env("NATS_URL", "nats://127.0.0.1:4222"))
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA", "data")))
    prefix: str = field(default_factory=lambda: _env("PREFIX", DEFAULT_PREFIX))
    token_secret: str = field(default_factory=lambda: _env("TOKEN_SECRET"))
    metrics_port: int = field(default_factory=lambda: _env_number("METRICS_PORT", "0"))
    metrics_host: str = field(default_factory=lambda: _env("METRICS_HOST", "127.0.0.1"))
    stream_replicas: int = field(default_factory=lambda: _env_number("STREAM_REPLICAS", "1"))
    # room service: how long an accepted call waits for its callees before it is abandoned
    abandon_after_seconds: float = field(default_factory=lambda: _env_number("ABANDON_AFTER_SECONDS", "10", float))
    # NATS writes of a service at most once per this many ms under load (0: as nats-py does)
    flush_interval_ms: float = field(default_factory=lambda: _env_number("FLUSH_INTERVAL_MS", "1", float))
    # `ringlog up`: niceness of the embedded nats-server above ringlog's own (0-19)
    nats_nice: int = field(default_factory=lambda: _env_number("NATS_NICE", "10"))
    # room service: how long the hang-up hook may take before the hang-up counts as confirmed
    hook_timeout_seconds: float = field(default_factory=lambda: _env_number("HOOK_TIMEOUT_SECONDS", "2", float))

    def sqlite_path(self, service: str) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return str(self.data_dir / f"{service}.sqlite")

    def secret(self) -> str:
        """The token key: RINGLOG_TOKEN_SECRET, else the data folder's own (created once)."""
        if self.token_secret:
            return self.token_secret
        path = self.data_dir / "token_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        self.token_secret = path.read_text().strip()
        return self.token_secret
