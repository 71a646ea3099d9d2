"""Run the scheduler: `python -m scheduler_svc` (settings from the environment)."""

from __future__ import annotations

from common.grpc_server import run_service
from scheduler_svc.app import SchedulerApp, tune_gc
from scheduler_svc.config import SchedulerSettings

if __name__ == "__main__":
    tune_gc()
    run_service("scheduler", SchedulerSettings.from_env, SchedulerApp)
