"""Reading the deployment files the way Docker does: the image's ENV, compose's services and env."""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
K8S_BASE = DOCKER / "k8s" / "base"

# ${NAME}, ${NAME:-default}, ${NAME-default}: the forms compose interpolates.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


@cache
def _script(name: str) -> ModuleType:
    """docker/<name>.py as a module (docker/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, DOCKER / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def check_k8s() -> ModuleType:
    """docker/check_k8s.py: the rules for rendered Kubernetes manifests."""
    return _script("check_k8s")


def check_image() -> ModuleType:
    """docker/check_image.py: the rules for the Dockerfile and the compose file."""
    return _script("check_image")


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's variable interpolation of one value, against `environ` (the .env file)."""

    def replace(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        current = environ.get(name)
        if op == ":-" and not current:
            return default
        if op == "-" and current is None:
            return default
        return current or ""

    return _VARIABLE.sub(replace, value)


def compose_file() -> dict[str, Any]:
    """docker/compose.yaml parsed (YAML merge keys applied, as compose applies them)."""
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def compose_service(name: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """One compose service with its environment interpolated (no .env file by default)."""
    service: dict[str, Any] = dict(compose_file()["services"][name])
    service["environment"] = {
        key: interpolate(str(value), environ or {})
        for key, value in (service.get("environment") or {}).items()
    }
    return service


def image_stage() -> list[tuple[str, str]]:
    """The Dockerfile's final stage as (INSTRUCTION, arguments) pairs."""
    module = check_image()
    stage: list[tuple[str, str]] = module.final_stage(
        module.dockerfile_instructions(DOCKERFILE.read_text())
    )
    return stage


def image_env() -> dict[str, str]:
    """The ENV the image sets in its final stage."""
    env: dict[str, str] = check_image().stage_env(image_stage())
    return env


def image_copies() -> dict[str, Path]:
    """Files the final stage copies from the build context: path in the image -> source file."""
    copies = {}
    for keyword, rest in image_stage():
        words = rest.split()
        if keyword == "COPY" and not words[0].startswith("--"):
            copies[words[-1]] = ROOT / words[0]
    return copies
