"""The project's own rules for how its image is built and run on one host.

    python docker/check_image.py docker/Dockerfile docker/compose.yaml

Prints every broken rule and exits 1, or exits 0. The Dockerfile: one digest-pinned base for
every stage, a numeric non-root user, nothing installed or built in the final stage, an exec-form
command, and every file it copies present and let through by its .dockerignore. The compose file:
the three services run the image's entry points with the same hardening as the Kubernetes pods,
health checks, the encryption key only in the scheduler, addresses that match the services, and
the names TorBox Manager expects. Needs PyYAML (docker/validate.sh installs it).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

# part -> module it runs, and part -> its compose service (TBM calls the gateway torbox-backend).
MODULES = {"userstore": "userstore_svc", "scheduler": "scheduler_svc", "gateway": "gateway"}
COMPOSE_SERVICES = {"userstore": "userstore", "scheduler": "scheduler", "gateway": "torbox-backend"}
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|gcc|g\+\+|cc|make|build-essential|pip)\b")
HEALTHCHECK_PATH = "/app/healthcheck.py"


def _get(doc: Any, *path: str | int, default: Any = None) -> Any:
    """doc[path[0]][path[1]]... or `default` when any step is missing."""
    node = doc
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return default
        elif not isinstance(node, dict) or step not in node:
            return default
        node = node[step]
    return node


# Compose ---------------------------------------------------------------------------------------


def check_compose(doc: Doc) -> list[str]:
    """Every broken rule in compose.yaml (after YAML merge keys are applied)."""
    problems: list[str] = []
    services: Doc = doc.get("services") or {}
    images = set()
    for part, name in COMPOSE_SERVICES.items():
        service = services.get(name)
        if service is None:
            problems.append(f"compose: service {name!r} is missing")
            continue
        images.add(service.get("image"))
        if service.get("command") != ["python", "-m", MODULES[part]]:
            problems.append(f"compose {name}: command must be ['python', '-m', '{MODULES[part]}']")
        if service.get("read_only") is not True:
            problems.append(f"compose {name}: read_only must be true")
        if "ALL" not in (service.get("cap_drop") or []):
            problems.append(f"compose {name}: cap_drop must include ALL")
        if "no-new-privileges:true" not in (service.get("security_opt") or []):
            problems.append(f"compose {name}: security_opt must include no-new-privileges:true")
        if _get(service, "healthcheck", "test") != ["CMD", "python", HEALTHCHECK_PATH, part]:
            problems.append(f"compose {name}: healthcheck must run {HEALTHCHECK_PATH} {part}")
        environment = service.get("environment")
        if not isinstance(environment, dict):
            problems.append(f"compose {name}: environment must be a mapping")
            continue
        if part != "scheduler" and "ENCRYPTION_KEY" in environment:
            problems.append(f"compose {name}: only the scheduler may see ENCRYPTION_KEY")
    if len(images) != 1:
        problems.append("compose: the three services must run the same image")
    env = {name: (services.get(name) or {}).get("environment") or {} for name in services}
    store_port = env.get("userstore", {}).get("USERSTORE_PORT", "50051")
    scheduler_port = env.get("scheduler", {}).get("SCHEDULER_PORT", "50052")
    for name in ("scheduler", "torbox-backend"):
        if env.get(name, {}).get("USERSTORE_ADDRS") != f"userstore:{store_port}":
            problems.append(f"compose {name}: USERSTORE_ADDRS must be userstore:{store_port}")
    if env.get("torbox-backend", {}).get("SCHEDULER_ADDR") != f"scheduler:{scheduler_port}":
        problems.append(
            f"compose torbox-backend: SCHEDULER_ADDR must be scheduler:{scheduler_port}"
        )
    volumes = [str(v) for v in (services.get("userstore") or {}).get("volumes", [])]
    if not any(v.endswith(":/data") for v in volumes):
        problems.append("compose userstore: a named volume must be mounted at /data")
    if _get(doc, "networks", "default", "name") != "torbox-network":
        problems.append("compose: the default network must be named torbox-network")
    gateway_port = env.get("torbox-backend", {}).get("PORT", "3001")
    frontend = env.get("frontend", {})
    if frontend and frontend.get("BACKEND_URL") != f"http://torbox-backend:{gateway_port}":
        problems.append("compose frontend: BACKEND_URL must point at the torbox-backend service")
    return problems


# Dockerfile ------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last stage (from its FROM on)."""
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :] if starts else []


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The ENV a stage sets (KEY=value form; $PATH-style references left as written)."""
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                env[key] = value
    return env


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context (allowlist-style .dockerignore) leaves `path` out."""
    included = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if body == "*" or path == body or path.startswith(body + "/"):
            included = negated
    return not included


def check_dockerfile(text: str, ignore_text: str, root: Path) -> list[str]:
    """Every broken rule in the Dockerfile (and its build-context allowlist)."""
    problems: list[str] = []
    instructions = dockerfile_instructions(text)
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )
    if not BASE_IMAGE.match(args.get("PYTHON_IMAGE", "")):
        problems.append("Dockerfile: ARG PYTHON_IMAGE must pin python:3.11.N-slim-bookworm@sha256")
    for keyword, rest in instructions:
        if keyword == "FROM" and rest.split()[0] != "${PYTHON_IMAGE}":
            problems.append(f"Dockerfile: FROM {rest} does not use the pinned ${{PYTHON_IMAGE}}")
    stage = final_stage(instructions)
    users = [rest for keyword, rest in stage if keyword == "USER"]
    if not users or not users[-1].split(":")[0].isdigit() or users[-1].split(":")[0] == "0":
        problems.append("Dockerfile: the final stage must switch to a numeric non-root USER")
    for keyword, rest in stage:
        if keyword == "RUN" and BUILD_TOOLS.search(rest):
            problems.append(f"Dockerfile: the final stage must not install or build: RUN {rest}")
    cmd = [rest for keyword, rest in stage if keyword == "CMD"]
    try:
        command = json.loads(cmd[-1]) if cmd else None
    except json.JSONDecodeError:
        command = None  # shell form: a shell as PID 1 would not pass SIGTERM on
    if not isinstance(command, list) or command[:2] != ["python", "-m"]:
        problems.append("Dockerfile: CMD must be an exec-form ['python', '-m', <module>]")
    if any(keyword == "ENTRYPOINT" for keyword, _ in stage):
        problems.append("Dockerfile: no ENTRYPOINT: the command names the entry point")
    env = stage_env(stage)
    if env.get("BIND_HOST") != "0.0.0.0":  # noqa: S104 - containers listen on their own network
        problems.append("Dockerfile: the final stage must set BIND_HOST=0.0.0.0")
    patterns = [
        line.strip()
        for line in ignore_text.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for keyword, rest in instructions:
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        for source in shlex.split(rest)[:-1]:
            if source.startswith("--"):
                continue
            if not (root / source).exists():
                problems.append(f"Dockerfile: COPY source {source} does not exist")
            elif _ignored(source.rstrip("/"), patterns):
                problems.append(
                    f"Dockerfile: COPY source {source} is left out by the .dockerignore"
                )
    return problems


def main(argv: list[str]) -> int:
    """Check the Dockerfile and the compose file named; print the problems; 0 when none."""
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    dockerfile, compose = Path(argv[0]), Path(argv[1])
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    root = dockerfile.resolve().parent.parent
    problems = [
        f"{dockerfile}: {p}"
        for p in check_dockerfile(dockerfile.read_text(), ignore.read_text(), root)
    ]
    problems += [f"{compose}: {p}" for p in check_compose(yaml.safe_load(compose.read_text()))]
    for problem in problems:
        sys.stderr.write(problem + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
