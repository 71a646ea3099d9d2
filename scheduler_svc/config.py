"""The scheduler's settings, parsed once from the environment (every bad variable named)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.settings import EnvReader
from scheduler_svc.keys import LEGACY_KEY_FILE


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Everything the scheduler reads from its environment."""

    bind_host: str
    port: int
    userstore_addrs: tuple[str, ...]
    torbox_api_base: str
    torbox_api_version: str
    encryption_key: bytes | None
    encryption_key_file: Path
    legacy_key_file: Path | None
    poll_interval_seconds: float
    idle_poll_interval_seconds: float
    min_poll_interval_seconds: float
    scheduler_replicas: int
    scheduler_index: int
    dry_run: bool
    torbox_timeout_seconds: float
    torbox_rate_per_minute: float
    torbox_global_rate_per_second: float
    torbox_max_concurrency: int
    max_concurrent_polls: int
    action_concurrency: int
    rate_limit_fallback_seconds: float
    auth_failures_before_stop: int
    breaker_min_polls: int
    breaker_failure_ratio: float
    breaker_probe_seconds: float
    registry_sync_seconds: float
    userstore_timeout_seconds: float
    shutdown_grace_seconds: float
    log_format: str
    log_level: str
    # The upload queue's worker: how often it asks for due users (0: off), rows per user and
    # cycle, how long a claim is held, users served at once, and the wait after a bare 429.
    upload_poll_seconds: float = 0.5
    upload_batch: int = 5
    upload_lease_seconds: float = 120.0
    upload_user_concurrency: int = 8
    upload_rate_limit_fallback_seconds: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SchedulerSettings:
        """Parse and validate; raises SettingsError naming every bad variable."""
        env = EnvReader(environ)
        settings = cls(
            bind_host=env.string("BIND_HOST", "127.0.0.1"),
            port=env.port("SCHEDULER_PORT", 50052),
            userstore_addrs=env.address_list("USERSTORE_ADDRS", "127.0.0.1:50051"),
            torbox_api_base=env.string("TORBOX_API_BASE", "https://api.torbox.app"),
            torbox_api_version=env.string("TORBOX_API_VERSION", "v1"),
            encryption_key=env.key32("ENCRYPTION_KEY"),
            encryption_key_file=env.path("ENCRYPTION_KEY_FILE", "./secrets/encryption.key"),
            # Only when the place is the default: an operator's explicit choice stands.
            legacy_key_file=None if env.optional_string("ENCRYPTION_KEY_FILE") else LEGACY_KEY_FILE,
            poll_interval_seconds=env.number("POLL_INTERVAL_SECONDS", 300.0, minimum=0.1),
            idle_poll_interval_seconds=env.number(
                "IDLE_POLL_INTERVAL_SECONDS", 1800.0, minimum=0.1
            ),
            min_poll_interval_seconds=env.number("MIN_POLL_INTERVAL_SECONDS", 30.0, minimum=0.1),
            scheduler_replicas=env.integer("SCHEDULER_REPLICAS", 1, minimum=1),
            scheduler_index=env.integer("SCHEDULER_INDEX", 0, minimum=0),
            dry_run=env.boolean("DRY_RUN", False),
            torbox_timeout_seconds=env.number("TORBOX_TIMEOUT_SECONDS", 20.0, minimum=0.1),
            torbox_rate_per_minute=env.number("TORBOX_RATE_PER_MINUTE", 250.0, minimum=1.0),
            torbox_global_rate_per_second=env.number(
                "TORBOX_GLOBAL_RATE_PER_SECOND", 500.0, minimum=0.0
            ),
            torbox_max_concurrency=env.integer("TORBOX_MAX_CONCURRENCY", 64, minimum=1),
            max_concurrent_polls=env.integer("MAX_CONCURRENT_POLLS", 64, minimum=1),
            action_concurrency=env.integer("ACTION_CONCURRENCY", 4, minimum=1),
            rate_limit_fallback_seconds=env.number(
                "RATE_LIMIT_FALLBACK_SECONDS", 60.0, minimum=0.0
            ),
            auth_failures_before_stop=env.integer("AUTH_FAILURES_BEFORE_STOP", 3, minimum=1),
            breaker_min_polls=env.integer("BREAKER_MIN_POLLS", 5, minimum=1),
            breaker_failure_ratio=env.number("BREAKER_FAILURE_RATIO", 0.8, minimum=0.01),
            breaker_probe_seconds=env.number("BREAKER_PROBE_SECONDS", 30.0, minimum=0.1),
            registry_sync_seconds=env.number("REGISTRY_SYNC_SECONDS", 5.0, minimum=0.1),
            userstore_timeout_seconds=env.number("USERSTORE_TIMEOUT_SECONDS", 30.0, minimum=0.1),
            shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0),
            log_format=env.choice("LOG_FORMAT", "json", ("json", "text")),
            log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            upload_poll_seconds=env.number("UPLOAD_POLL_SECONDS", 0.5, minimum=0.0),
            upload_batch=env.integer("UPLOAD_BATCH", 5, minimum=1),
            upload_lease_seconds=env.number("UPLOAD_LEASE_SECONDS", 120.0, minimum=1.0),
            upload_user_concurrency=env.integer("UPLOAD_USER_CONCURRENCY", 8, minimum=1),
            upload_rate_limit_fallback_seconds=env.number(
                "UPLOAD_RATE_LIMIT_FALLBACK_SECONDS", 300.0, minimum=1.0
            ),
        )
        if settings.scheduler_index >= settings.scheduler_replicas:
            env.problem(
                f"SCHEDULER_INDEX={settings.scheduler_index} must be below "
                f"SCHEDULER_REPLICAS={settings.scheduler_replicas}"
            )
        if settings.breaker_failure_ratio > 1:
            env.problem("BREAKER_FAILURE_RATIO must be at most 1")
        if not settings.torbox_api_base.startswith(("http://", "https://")):
            env.problem(f"TORBOX_API_BASE={settings.torbox_api_base!r} must be an http(s) URL")
        env.finish()
        return settings
