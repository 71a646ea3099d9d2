"""The image's entry points, run as local processes exactly the way compose runs the containers.

No container engine is available here, so each service starts with its compose `command` and the
environment its container would get: the image's final-stage ENV, then compose's `environment`
(interpolated with no .env file, except TORBOX_API_BASE pointing at the simulator, the documented
override). Only what a container gets from Docker itself is translated: listening ports become 0
(through the same variables), each volume's mount point becomes a temporary folder, and the
compose service names in addresses become 127.0.0.1 with the bound ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import stat
import sys
from pathlib import Path

import aiohttp
import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common.processes import ManagedProcess, ready_port
from tests.deploy.deployfiles import ROOT, compose_service, image_copies, image_env

pytestmark = pytest.mark.e2e

START_TIMEOUT = 90.0
# compose service -> (module in its command, variable holding its port, gRPC health name or None)
SERVICES = {
    "userstore": ("userstore_svc", "USERSTORE_PORT", "torbox.automation.v1.UserstoreService"),
    "scheduler": ("scheduler_svc", "SCHEDULER_PORT", "torbox.automation.v1.SchedulerService"),
    "torbox-backend": ("gateway", "PORT", None),
}
# a few methods reflection must describe for each gRPC service
# Services a process serves next to its main one (the userstore's TBM resources).
ALSO_SERVED = {
    "userstore": (
        "torbox.automation.v1.TagsService",
        "torbox.automation.v1.ViewsService",
        "torbox.automation.v1.LinkHistoryService",
        "torbox.automation.v1.UploadsService",
    )
}
SOME_METHODS = {
    "userstore": {"Ingest", "RegisterUser", "GetStats"},
    "scheduler": {"EnsureUser", "RunRule", "GetStatus"},
}


class Container:
    """One compose service run as a local process with its container's command and environment."""

    def __init__(self, name: str, volumes_root: Path, sim_url: str) -> None:
        self.name = name
        self.service = compose_service(name, {"TORBOX_API_BASE": sim_url})
        module, self.port_variable, self.health_name = SERVICES[name]
        command = self.service["command"]
        assert command == ["python", "-m", module], command
        # `python` in the image is the venv's interpreter; here it is the one running the tests.
        self.argv = [sys.executable, *command[1:]]
        mounts = {}
        for volume in self.service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            mounts[target] = volumes_root / source
            mounts[target].mkdir(parents=True, exist_ok=True)
        self.mounts = mounts
        env = {key: value for key, value in image_env().items() if key != "PATH"}
        env["LANG"] = "C.UTF-8"  # set by the python base image
        env.update(self.service["environment"])
        self.env = {key: self._on_volume(value) for key, value in env.items()}
        self.env[self.port_variable] = "0"
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.port = 0

    def _on_volume(self, value: str) -> str:
        for target, folder in self.mounts.items():
            if value == target or value.startswith(target.rstrip("/") + "/"):
                return str(folder) + value[len(target.rstrip("/")) :]
        return value

    def route(self, addresses: dict[str, str]) -> None:
        """Replace compose's `service:port` addresses with where those services really listen."""
        for key, value in self.env.items():
            parts = [addresses.get(part, part) for part in value.split(",")]
            self.env[key] = ",".join(parts)

    async def start(self) -> int:
        """Start the process and wait for its "serving" line; returns the bound port."""
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

        async def ready() -> int:
            assert self.process is not None
            assert self.process.stdout is not None
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"{self.name} exited:\n" + "\n".join(self.lines))
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                port = ready_port(line)
                if port is not None:
                    return port

        self.port = await asyncio.wait_for(ready(), START_TIMEOUT)
        self._drain = asyncio.create_task(self._keep_reading())
        return self.port

    async def _keep_reading(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    async def healthcheck(self) -> int:
        """Run the compose healthcheck command in this container's environment; its exit code."""
        test = self.service["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"], test
        script = image_copies()[test[2]]
        env = {**self.env, self.port_variable: str(self.port)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), *test[3:], env=env, cwd=ROOT
        )
        return await asyncio.wait_for(process.wait(), 30)

    async def stop(self) -> int:
        """SIGTERM, as `docker stop` sends; the exit code (SIGKILL after the grace period)."""
        if self.process is None:
            return 0
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._drain, 5)
        assert self.process.returncode is not None
        return self.process.returncode


async def grpc_status(port: int, service: str) -> int:
    """The standard gRPC health service's answer for `service` on 127.0.0.1:port."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return int(reply.status)


async def reflected(port: int, service: str) -> tuple[set[str], set[str]]:
    """Server reflection on 127.0.0.1:port: the services listed, and the methods of `service`."""
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = [reply async for reply in stub.ServerReflectionInfo(iter(requests), timeout=10)]
    listed = {entry.name for entry in replies[0].list_services_response.service}
    package, _, name = service.rpartition(".")
    methods: set[str] = set()
    for raw in replies[1].file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        if proto.package == package:
            for described in proto.service:
                if described.name == name:
                    methods.update(method.name for method in described.method)
    return listed, methods


async def test_image_entry_points_serve_report_health_and_stop_cleanly(tmp_path: Path) -> None:
    """The services, started as the image starts them, answer health and reflection, register a
    user and exit 0 on SIGTERM."""
    simulator = ManagedProcess(
        "simulator", "simulator", {}, args=("--port", "0", "--time-scale", "0")
    )
    sim_url = f"http://127.0.0.1:{await simulator.start()}"
    containers = {name: Container(name, tmp_path / "volumes", sim_url) for name in SERVICES}
    started: list[Container] = []
    try:
        addresses: dict[str, str] = {}
        for name in ("userstore", "scheduler", "torbox-backend"):
            container = containers[name]
            container.route(addresses)
            port = await container.start()
            started.append(container)
            compose_port = container.service["environment"][container.port_variable]
            addresses[f"{name}:{compose_port}"] = f"127.0.0.1:{port}"

        for container in started:
            assert container.env["BIND_HOST"] == "0.0.0.0"
            if container.health_name is not None:
                for service in ("", container.health_name):
                    status = await grpc_status(container.port, service)
                    assert status == health_pb2.HealthCheckResponse.SERVING, (
                        container.name,
                        service,
                    )
                # grpcurl and grpcui work against the pods: reflection lists the service, health
                # and reflection itself, and describes the service's methods.
                listed, methods = await reflected(container.port, container.health_name)
                assert listed == {
                    container.health_name,
                    *ALSO_SERVED.get(container.name, ()),
                    "grpc.health.v1.Health",
                    "grpc.reflection.v1alpha.ServerReflection",
                }, (container.name, listed)
                assert SOME_METHODS[container.name] <= methods, (container.name, methods)
            assert await container.healthcheck() == 0, container.name

        gateway = containers["torbox-backend"]
        base = f"http://127.0.0.1:{gateway.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/health") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "healthy"
            async with http.post(f"{sim_url}/_sim/accounts", json={"mix": {"seeding": 1}}) as r:
                account = await r.json()
            async with http.post(
                f"{base}/api/backend/api-key/ensure-db", headers={"x-api-key": account["api_key"]}
            ) as response:
                body = await response.json()
                assert response.status == 200, body
                assert body["success"] is True

        # With ENCRYPTION_KEY empty (compose's default) the scheduler keeps a generated key on
        # its own volume; the registry lives on the userstore's.
        key_file = Path(containers["scheduler"].env["ENCRYPTION_KEY_FILE"])
        assert key_file.is_relative_to(tmp_path / "volumes" / "scheduler-data")
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        registry = Path(containers["userstore"].env["MASTER_DB_PATH"])
        assert registry.is_relative_to(tmp_path / "volumes" / "userstore-data")
        assert registry.exists()
        assert stat.S_IMODE(registry.stat().st_mode) == 0o600

        for container in reversed(started):
            assert await container.stop() == 0, "\n".join(container.lines[-30:])
        # The healthcheck reports a stopped service as unhealthy, not healthy.
        assert await containers["userstore"].healthcheck() == 1
    finally:
        for container in reversed(started):
            await container.stop()
        await simulator.stop()
