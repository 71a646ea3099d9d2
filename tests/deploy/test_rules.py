"""docker/check_k8s.py and check_image.py accept the deployment files and name each broken rule.

The Kubernetes rules run here on the base variant's own files, with the two things kustomize adds
applied by hand (the image tag and the generated routing ConfigMap, without its hash suffix):
rendering itself is docker/validate.sh's job, with the real kustomize.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.deploy.deployfiles import (
    COMPOSE,
    DOCKERFILE,
    K8S_BASE,
    ROOT,
    check_image,
    check_k8s,
    compose_file,
    compose_service,
    image_copies,
)

Doc = dict[str, Any]


def base_variant() -> list[Doc]:
    """The base kustomization's resources, image tag and routing ConfigMap, unrendered."""
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S_BASE / resource).read_text()) if d]
    tags = {image["name"]: image["newTag"] for image in kustomization["images"]}
    for doc in docs:
        for container in (
            doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            container["image"] = f"{container['image']}:{tags[container['image']]}"
    for generator in kustomization["configMapGenerator"]:
        data = dict(literal.split("=", 1) for literal in generator["literals"])
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return docs


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    """The object of `kind` called `name`."""
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def container(docs: list[Doc], kind: str, name: str) -> Doc:
    """The main container of a workload."""
    result: Doc = find(docs, kind, name)["spec"]["template"]["spec"]["containers"][0]
    return result


def env_item(docs: list[Doc], kind: str, name: str, variable: str) -> Doc:
    """One env entry of a workload's main container."""
    return next(e for e in container(docs, kind, name)["env"] if e["name"] == variable)


def test_base_variant_follows_every_rule() -> None:
    """The base manifests as written break no rule."""
    assert check_k8s().check_k8s(base_variant()) == []


def _writable_root(docs: list[Doc]) -> None:
    del container(docs, "Deployment", "gateway")["securityContext"]["readOnlyRootFilesystem"]


def _exec_probe(docs: list[Doc]) -> None:
    container(docs, "StatefulSet", "userstore")["livenessProbe"] = {
        "exec": {"command": ["grpc_health_probe", "-addr=:50051"]}
    }


def _more_schedulers(docs: list[Doc]) -> None:
    find(docs, "StatefulSet", "scheduler")["spec"]["replicas"] = 2


def _more_shards(docs: list[Doc]) -> None:
    find(docs, "StatefulSet", "userstore")["spec"]["replicas"] = 2


def _open_userstore(docs: list[Doc]) -> None:
    del find(docs, "NetworkPolicy", "userstore")["spec"]["ingress"][0]["from"]


def _userstore_reaches_scheduler(docs: list[Doc]) -> None:
    rule = find(docs, "NetworkPolicy", "scheduler")["spec"]["ingress"][0]
    rule["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "userstore"}}})


def _key_in_gateway(docs: list[Doc]) -> None:
    container(docs, "Deployment", "gateway")["env"].append(
        {
            "name": "ENCRYPTION_KEY",
            "valueFrom": {"secretKeyRef": {"name": "torbox-encryption", "key": "ENCRYPTION_KEY"}},
        }
    )


def _fixed_index(docs: list[Doc]) -> None:
    item = env_item(docs, "StatefulSet", "scheduler", "SCHEDULER_INDEX")
    item.pop("valueFrom")
    item["value"] = "0"


def _optional_key(docs: list[Doc]) -> None:
    item = env_item(docs, "StatefulSet", "scheduler", "ENCRYPTION_KEY")
    item["valueFrom"]["secretKeyRef"]["optional"] = True


def _no_budget(docs: list[Doc]) -> None:
    docs.remove(find(docs, "PodDisruptionBudget", "userstore"))


def _no_limits(docs: list[Doc]) -> None:
    del container(docs, "StatefulSet", "scheduler")["resources"]["limits"]


def _capabilities_kept(docs: list[Doc]) -> None:
    container(docs, "StatefulSet", "userstore")["securityContext"]["capabilities"] = {"drop": []}


def _replicas_on_gateway(docs: list[Doc]) -> None:
    find(docs, "Deployment", "gateway")["spec"]["replicas"] = 2


def _readiness_without_service(docs: list[Doc]) -> None:
    del container(docs, "StatefulSet", "scheduler")["readinessProbe"]["grpc"]["service"]


def _liveness_on_readiness(docs: list[Doc]) -> None:
    # Liveness on the readiness path would restart every gateway while a shard is down.
    container(docs, "Deployment", "gateway")["livenessProbe"]["httpGet"]["path"] = "/health"


def _readiness_on_liveness(docs: list[Doc]) -> None:
    container(docs, "Deployment", "gateway")["readinessProbe"]["httpGet"]["path"] = "/live"


def _data_off_volume(docs: list[Doc]) -> None:
    env_item(docs, "StatefulSet", "userstore", "USER_DB_DIR")["value"] = "/tmp/users"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (_writable_root, "readOnlyRootFilesystem must be true"),
        (_exec_probe, "livenessProbe must not exec a command"),
        (_more_schedulers, "SCHEDULER_REPLICAS is '1' but the StatefulSet has 2 replicas"),
        (_more_shards, "with 2 userstore replicas it must be"),
        (_open_userstore, "reachable from ['*'], must be ['gateway', 'scheduler']"),
        (
            _userstore_reaches_scheduler,
            "reachable from ['gateway', 'userstore'], must be ['gateway']",
        ),
        (_key_in_gateway, "only the scheduler may see ENCRYPTION_KEY"),
        (_fixed_index, "SCHEDULER_INDEX must come from the pod-index label"),
        (_optional_key, "ENCRYPTION_KEY must come from the Secret torbox-encryption"),
        (_no_budget, "needs exactly one PodDisruptionBudget"),
        (_no_limits, "resources.limits.cpu is missing"),
        (_capabilities_kept, "capabilities.drop must include ALL"),
        (_replicas_on_gateway, "leave replicas to the HorizontalPodAutoscaler"),
        (_liveness_on_readiness, "livenessProbe must be an httpGet of /live"),
        (_readiness_on_liveness, "readinessProbe must be an httpGet of /health"),
        (
            _readiness_without_service,
            "readiness must check service torbox.automation.v1.SchedulerService",
        ),
        (_data_off_volume, "USER_DB_DIR must lie under the volume at /data"),
    ],
)
def test_each_broken_kubernetes_rule_is_named(
    change: Callable[[list[Doc]], None], complaint: str
) -> None:
    """A manifest change that breaks a rule produces a problem naming it."""
    docs = copy.deepcopy(base_variant())
    change(docs)
    problems = check_k8s().check_k8s(docs)
    assert any(complaint in problem for problem in problems), problems


def test_compose_file_follows_every_rule() -> None:
    """compose.yaml as written breaks no rule."""
    assert check_image().check_compose(compose_file()) == []


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            lambda d: d["services"].update({"gateway": d["services"].pop("torbox-backend")}),
            "'torbox-backend' is missing",
        ),
        (
            lambda d: d["services"]["torbox-backend"]["environment"].update(
                {"ENCRYPTION_KEY": "x"}
            ),
            "only the scheduler may see",
        ),
        (
            lambda d: d["services"]["userstore"].update({"read_only": False}),
            "read_only must be true",
        ),
        (
            lambda d: d["services"]["scheduler"]["environment"].update(
                {"USERSTORE_ADDRS": "localhost:50051"}
            ),
            "USERSTORE_ADDRS must be userstore:50051",
        ),
        (
            lambda d: d["services"]["frontend"]["environment"].update(
                {"BACKEND_URL": "http://gateway:3001"}
            ),
            "BACKEND_URL must point",
        ),
    ],
)
def test_each_broken_compose_rule_is_named(change: Callable[[Doc], None], complaint: str) -> None:
    """A compose change that breaks a rule produces a problem naming it."""
    doc = copy.deepcopy(compose_file())
    change(doc)
    problems = check_image().check_compose(doc)
    assert any(complaint in problem for problem in problems), problems


def _dockerfile_problems(text: str) -> list[str]:
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text()
    problems: list[str] = check_image().check_dockerfile(text, ignore, ROOT)
    return problems


def test_dockerfile_follows_every_rule() -> None:
    """The Dockerfile as written breaks no rule."""
    assert _dockerfile_problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("FROM ${PYTHON_IMAGE}\n", "FROM python:3.11-slim\n", "does not use the pinned"),
        ("@sha256:", ":", "must pin python:3.11.N-slim-bookworm@sha256"),
        ("USER 10001:10001\n", "", "numeric non-root USER"),
        (
            "WORKDIR /app\n",
            "WORKDIR /app\nRUN apt-get update && apt-get install -y gcc\n",
            "must not install or build",
        ),
        ('CMD ["python", "-m", "gateway"]', "CMD python -m gateway", "CMD must be an exec-form"),
        ("COPY docker/healthcheck.py", "COPY docker/missing.py", "does not exist"),
        ("COPY docker/healthcheck.py", "COPY docker/compose.yaml", "left out by the .dockerignore"),
    ],
)
def test_each_broken_dockerfile_rule_is_named(old: str, new: str, complaint: str) -> None:
    """A Dockerfile change that breaks a rule produces a problem naming it."""
    text = DOCKERFILE.read_text()
    assert old in text
    problems = _dockerfile_problems(text.replace(old, new, 1))
    assert any(complaint in problem for problem in problems), problems


def test_healthcheck_script_is_what_the_image_copies() -> None:
    """Each compose healthcheck runs a file the image holds: a copy of docker/healthcheck.py."""
    kinds = {"userstore": "userstore", "scheduler": "scheduler", "torbox-backend": "gateway"}
    copies = image_copies()
    for name, kind in kinds.items():
        test = compose_service(name)["healthcheck"]["test"]
        assert test == ["CMD", "python", "/app/healthcheck.py", kind]
        assert copies[test[2]] == ROOT / "docker" / "healthcheck.py"
        assert os.path.isfile(copies[test[2]])
    assert COMPOSE.exists()
