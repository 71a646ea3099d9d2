"""Run the userstore: `python -m userstore_svc` (settings from the environment)."""

from __future__ import annotations

from common.grpc_server import run_service
from userstore_svc.app import UserstoreApp
from userstore_svc.config import UserstoreSettings

if __name__ == "__main__":
    run_service("userstore", UserstoreSettings.from_env, UserstoreApp)
