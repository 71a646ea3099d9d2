"""Run the userstore: `python -m userstore_svc` (settings from the environment)."""

from __future__ import annotations

import sys

from common.grpc_server import run_service
from userstore_svc.app import UserstoreApp
from userstore_svc.config import UserstoreSettings

if __name__ == "__main__":
    # A heavy poll runs on its own thread (ingest.py, turns.py) beside the SQLite threads: the
    # event loop, which serves every other user, gets the interpreter back within 1 ms of asking
    # instead of CPython's default 5 ms.
    sys.setswitchinterval(0.001)
    run_service("userstore", UserstoreSettings.from_env, UserstoreApp)
