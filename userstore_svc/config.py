"""The userstore's settings, parsed once from the environment (every bad variable named)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.settings import EnvReader

# User databases kept open: about 0.2 MiB of the process's memory and two file descriptors each
# while idle (measured), so a shard of up to this many users keeps their files open instead of
# reopening one on every poll (docs/scaling.md).
DEFAULT_MAX_OPEN_DBS = 500
# Users whose decoded state (and SQLite's page cache of 256 KiB at most) stays in memory between
# polls: about 0.46 MiB each at 100 matured torrents, measured. With the defaults, a userstore
# polling 1,500 users of 100 torrents in turn stays near 220 MiB (docs/scaling.md).
DEFAULT_MAX_CACHED_USERS = 200


@dataclass(frozen=True, slots=True)
class UserstoreSettings:
    """Everything the userstore reads from its environment."""

    bind_host: str
    port: int
    user_db_dir: Path
    master_db_path: Path
    max_open_dbs: int
    max_cached_users: int
    stall_after_minutes: float
    ratio_event_threshold: float
    dry_run: bool
    max_destructive_per_poll: int
    maintenance_interval_seconds: float
    shutdown_grace_seconds: float
    log_format: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> UserstoreSettings:
        """Parse and validate; raises SettingsError naming every bad variable."""
        env = EnvReader(environ)
        settings = cls(
            bind_host=env.string("BIND_HOST", "127.0.0.1"),
            port=env.port("USERSTORE_PORT", 50051),
            user_db_dir=env.path("USER_DB_DIR", "./data/users"),
            master_db_path=env.path("MASTER_DB_PATH", "./data/master.sqlite"),
            max_open_dbs=env.integer("MAX_OPEN_DBS", DEFAULT_MAX_OPEN_DBS, minimum=1),
            max_cached_users=env.integer("MAX_CACHED_USERS", DEFAULT_MAX_CACHED_USERS, minimum=1),
            stall_after_minutes=env.number("STALL_AFTER_MINUTES", 10.0, minimum=0.01),
            ratio_event_threshold=env.number("RATIO_EVENT_THRESHOLD", 1.0, minimum=0.0),
            dry_run=env.boolean("DRY_RUN", False),
            max_destructive_per_poll=env.integer("MAX_DESTRUCTIVE_PER_POLL", 10, minimum=0),
            maintenance_interval_seconds=env.number(
                "MAINTENANCE_INTERVAL_SECONDS", 3600.0, minimum=1.0
            ),
            shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0),
            log_format=env.choice("LOG_FORMAT", "json", ("json", "text")),
            log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        )
        env.finish()
        return settings
