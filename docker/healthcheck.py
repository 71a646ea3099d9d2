"""Container health check for compose: `python /app/healthcheck.py gateway|userstore|scheduler`.

Kubernetes probes the services natively (gRPC and HTTP probes); Docker has no gRPC health check,
so compose runs this script inside the container. It reads the same port variables as the
service it checks and exits 0 only when that service reports itself ready: HTTP 200 from the
gateway's /health, or SERVING from the standard gRPC health service for the service's own name.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_SECONDS = 3.0
# service -> (port variable, default port, gRPC health service name or None for HTTP)
TARGETS: dict[str, tuple[str, int, str | None]] = {
    "gateway": ("PORT", 3001, None),
    "userstore": ("USERSTORE_PORT", 50051, "torbox.automation.v1.UserstoreService"),
    "scheduler": ("SCHEDULER_PORT", 50052, "torbox.automation.v1.SchedulerService"),
}


def check_http(port: int) -> str | None:
    """None when GET /health answers 200, else what went wrong."""
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except (urllib.error.URLError, OSError) as error:
        return f"{url}: {error}"
    return None if status == 200 else f"{url}: HTTP {status}"


def check_grpc(port: int, service: str) -> str | None:
    """None when the gRPC health service reports `service` SERVING, else what went wrong."""
    target = f"127.0.0.1:{port}"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_SECONDS
            )
        except grpc.RpcError as error:
            return f"{target} {service}: {error.code().name}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return (
            f"{target} {service}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
        )
    return None


def main(argv: list[str]) -> int:
    """Check the service named on the command line; 0 healthy, 1 unhealthy, 2 bad usage."""
    if len(argv) != 1 or argv[0] not in TARGETS:
        sys.stderr.write(f"usage: healthcheck.py {'|'.join(TARGETS)}\n")
        return 2
    variable, default, service = TARGETS[argv[0]]
    raw = os.environ.get(variable, "").strip()
    try:
        port = int(raw) if raw else default
    except ValueError:
        sys.stderr.write(f"{variable}={raw!r} is not a port\n")
        return 2
    problem = check_http(port) if service is None else check_grpc(port, service)
    if problem is not None:
        sys.stderr.write(f"unhealthy: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
