"""The gateway's settings, parsed once from the environment (every bad variable named)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import EnvReader


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything the gateway reads from its environment."""

    bind_host: str
    port: int
    userstore_addrs: tuple[str, ...]
    scheduler_addrs: tuple[str, ...]
    frontend_urls: tuple[str, ...]
    rate_limit_per_minute: float
    rate_limit_burst: int
    address_limit_per_minute: float
    address_limit_burst: int
    trusted_proxy_hops: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    grpc_timeout_seconds: float
    run_timeout_seconds: float
    ensure_timeout_seconds: float
    sse_heartbeat_seconds: float
    shutdown_grace_seconds: float
    log_format: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        """Parse and validate; raises SettingsError naming every bad variable."""
        env = EnvReader(environ)
        settings = cls(
            bind_host=env.string("BIND_HOST", "127.0.0.1"),
            port=env.port("PORT", 3001),
            userstore_addrs=env.address_list("USERSTORE_ADDRS", "127.0.0.1:50051"),
            # One address, or every scheduler replica's in index order (manual runs and restores
            # must reach the replica that polls the user).
            scheduler_addrs=env.address_list("SCHEDULER_ADDR", "127.0.0.1:50052"),
            frontend_urls=env.string_list("FRONTEND_URL", "http://localhost:3000"),
            rate_limit_per_minute=env.number("RATE_LIMIT_PER_MINUTE", 300.0, minimum=1.0),
            rate_limit_burst=env.integer("RATE_LIMIT_BURST", 60, minimum=1),
            address_limit_per_minute=env.number("ADDRESS_RATE_LIMIT_PER_MINUTE", 60.0, minimum=1.0),
            address_limit_burst=env.integer("ADDRESS_RATE_LIMIT_BURST", 30, minimum=1),
            # 0: the TCP peer is the client. Behind N proxies that each append to
            # X-Forwarded-For, the client is the N-th address from the right.
            trusted_proxy_hops=env.integer("TRUSTED_PROXY_HOPS", 0, minimum=0),
            header_timeout_seconds=env.number("HEADER_TIMEOUT_SECONDS", 20.0, minimum=0.1),
            body_timeout_seconds=env.number("BODY_TIMEOUT_SECONDS", 60.0, minimum=0.1),
            # Inside TBM's proxy timeouts (5 s for most calls, 30 s for a manual run, 10 s for
            # ensure-db), so TBM always gets our answer, not its own timeout.
            grpc_timeout_seconds=env.number("GRPC_TIMEOUT_SECONDS", 4.0, minimum=0.1),
            run_timeout_seconds=env.number("RUN_TIMEOUT_SECONDS", 25.0, minimum=1.0),
            ensure_timeout_seconds=env.number("ENSURE_TIMEOUT_SECONDS", 8.0, minimum=1.0),
            sse_heartbeat_seconds=env.number("SSE_HEARTBEAT_SECONDS", 15.0, minimum=0.1),
            shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0),
            log_format=env.choice("LOG_FORMAT", "json", ("json", "text")),
            log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        )
        for url in settings.frontend_urls:
            if url != "*" and not url.startswith(("http://", "https://")):
                env.problem(f"FRONTEND_URL entry {url!r} must be an http(s) origin or *")
        env.finish()
        return settings
