"""The project's own rules for its Kubernetes manifests, checked after schema validation.

    python docker/check_k8s.py <rendered.yaml>...   (each rendered kustomize variant)

Prints every broken rule and exits 1, or exits 0. The schemas say a manifest is well formed;
these rules say it is the deployment the project means: hardened pods with requests and limits,
native probes, the encryption key only in the scheduler, routing that agrees with the replica
counts, network policies that let only the intended callers in, and a disruption budget for each
part. Needs PyYAML (docker/validate.sh installs it with kubernetes-validate).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

# Which module each part runs (by its app.kubernetes.io/name) and its gRPC health service.
MODULES = {"userstore": "userstore_svc", "scheduler": "scheduler_svc", "gateway": "gateway"}
GRPC_SERVICES = {
    "userstore": "torbox.automation.v1.UserstoreService",
    "scheduler": "torbox.automation.v1.SchedulerService",
}
NAME_LABEL = "app.kubernetes.io/name"
POD_INDEX_FIELD = "metadata.labels['apps.kubernetes.io/pod-index']"
KEY_SECRET = "torbox-encryption"  # noqa: S105 - the Secret's name, not its content
# Who may open connections to whom (NetworkPolicy ingress), by app.kubernetes.io/name.
ALLOWED_CALLERS = {"userstore": {"gateway", "scheduler"}, "scheduler": {"gateway"}}


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


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects `labels`."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Workload:
    """A Deployment or StatefulSet and the facts the rules need about it."""

    doc: Doc
    part: str  # its app.kubernetes.io/name

    @property
    def kind(self) -> str:
        """Deployment or StatefulSet."""
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        """metadata.name."""
        return str(self.doc["metadata"]["name"])

    @property
    def pod(self) -> Doc:
        """The pod template's spec."""
        spec: Doc = self.doc["spec"]["template"]["spec"]
        return spec

    @property
    def pod_labels(self) -> dict[str, str]:
        """The pod template's labels."""
        labels: dict[str, str] = _get(self.doc, "spec", "template", "metadata", "labels") or {}
        return labels

    @property
    def replicas(self) -> int:
        """spec.replicas (Kubernetes' default is 1)."""
        return int(_get(self.doc, "spec", "replicas", default=1))

    @property
    def container(self) -> Doc:
        """The main (first) container."""
        container: Doc = self.pod["containers"][0]
        return container

    def containers(self) -> list[Doc]:
        """Every container, init containers included."""
        return [*self.pod.get("initContainers", []), *self.pod["containers"]]


def _env(container: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in container.get("env", [])}


class Manifests:
    """One rendered variant: its objects indexed the ways the rules look them up."""

    def __init__(self, docs: Iterable[Doc]) -> None:
        self.docs = [doc for doc in docs if doc]
        self.workloads = [
            Workload(doc, str(_get(doc, "spec", "template", "metadata", "labels", NAME_LABEL)))
            for doc in self.docs
            if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
        ]

    def of_kind(self, kind: str) -> list[Doc]:
        """Every object of one kind."""
        return [doc for doc in self.docs if doc.get("kind") == kind]

    def named(self, kind: str, name: str) -> Doc | None:
        """The object of `kind` called `name`, if any."""
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        return None

    def part(self, part: str) -> Workload | None:
        """The workload of one part (userstore, scheduler, gateway)."""
        for workload in self.workloads:
            if workload.part == part:
                return workload
        return None

    def env_value(self, container: Doc, name: str) -> str | None:
        """An env var's value, resolving configMapKeyRef; None when unset or not a plain value."""
        item = _env(container).get(name)
        if item is None:
            return None
        if "value" in item:
            return str(item["value"])
        ref = _get(item, "valueFrom", "configMapKeyRef")
        if ref is None:
            return None
        config_map = self.named("ConfigMap", ref["name"])
        if config_map is None:
            return None
        value = _get(config_map, "data", ref["key"])
        return None if value is None else str(value)


def _check_pod(w: Workload) -> list[str]:
    problems: list[str] = []
    where = f"{w.kind}/{w.name}"
    pod = w.pod
    pod_security = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken must be false")
    if pod_security.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod securityContext.runAsNonRoot must be true")
    if not pod_security.get("runAsUser"):
        problems.append(f"{where}: pod securityContext.runAsUser must be a non-zero uid")
    if _get(pod_security, "seccompProfile", "type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile must be RuntimeDefault")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{where}: {flag} must not be set")
    for container in w.containers():
        at = f"{where} container {container['name']}"
        security = container.get("securityContext") or {}
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation must be false")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: readOnlyRootFilesystem must be true")
        if security.get("privileged"):
            problems.append(f"{at}: must not be privileged")
        if "ALL" not in (_get(security, "capabilities", "drop") or []):
            problems.append(f"{at}: capabilities.drop must include ALL")
        if _get(security, "capabilities", "add"):
            problems.append(f"{at}: must not add capabilities")
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if _get(container, "resources", kind, resource) is None:
                    problems.append(f"{at}: resources.{kind}.{resource} is missing")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if _get(container, probe, "exec") is not None:
                problems.append(f"{at}: {probe} must not exec a command (use grpc or httpGet)")
        image = str(container.get("image", ""))
        if image.endswith(":latest") or (":" not in image and "@" not in image):
            problems.append(f"{at}: image {image!r} must carry a version tag or digest")
    return problems


def _check_part(m: Manifests, w: Workload) -> list[str]:
    problems: list[str] = []
    where = f"{w.kind}/{w.name}"
    container = w.container
    module = MODULES.get(w.part)
    if module is None:
        return [f"{where}: unknown part {w.part!r} (label {NAME_LABEL})"]
    if container.get("command") != ["python", "-m", module]:
        problems.append(f"{where}: command must be ['python', '-m', '{module}']")
    if w.part in GRPC_SERVICES:
        if w.kind != "StatefulSet":
            problems.append(f"{where}: the {w.part} must be a StatefulSet")
        port = container["ports"][0]["containerPort"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if _get(container, probe, "grpc", "port") != port:
                problems.append(f"{where}: {probe} must be a native gRPC probe on port {port}")
        readiness = _get(container, "readinessProbe", "grpc", "service")
        if readiness != GRPC_SERVICES[w.part]:
            problems.append(f"{where}: readiness must check service {GRPC_SERVICES[w.part]}")
        service = m.named("Service", str(_get(w.doc, "spec", "serviceName", default="")))
        if service is None or _get(service, "spec", "clusterIP") != "None":
            problems.append(f"{where}: serviceName must name a headless Service")
    else:
        if w.kind != "Deployment":
            problems.append(f"{where}: the gateway must be a Deployment")
        if "replicas" in w.doc["spec"]:
            problems.append(f"{where}: leave replicas to the HorizontalPodAutoscaler")
        # /health is readiness (every service behind answers); /live is liveness.
        for probe, path in (("livenessProbe", "/live"), ("readinessProbe", "/health")):
            if _get(container, probe, "httpGet", "path") != path:
                problems.append(f"{where}: {probe} must be an httpGet of {path}")
        if not any(
            _get(hpa, "spec", "scaleTargetRef", "kind") == w.kind
            and _get(hpa, "spec", "scaleTargetRef", "name") == w.name
            for hpa in m.of_kind("HorizontalPodAutoscaler")
        ):
            problems.append(f"{where}: no HorizontalPodAutoscaler targets it")
    if w.part == "userstore":
        mounts = {v["mountPath"]: v["name"] for v in container.get("volumeMounts", [])}
        claims = {
            _get(t, "metadata", "name") for t in w.doc["spec"].get("volumeClaimTemplates", [])
        }
        data_mount = next((path for path, name in mounts.items() if name in claims), None)
        if data_mount is None:
            problems.append(f"{where}: needs a PersistentVolumeClaim template mounted in the pod")
        else:
            for name in ("USER_DB_DIR", "MASTER_DB_PATH"):
                value = m.env_value(container, name) or ""
                if not value.startswith(data_mount.rstrip("/") + "/"):
                    problems.append(f"{where}: {name} must lie under the volume at {data_mount}")
    if w.part == "scheduler":
        env = _env(container)
        if (
            _get(env.get("SCHEDULER_INDEX"), "valueFrom", "fieldRef", "fieldPath")
            != POD_INDEX_FIELD
        ):
            problems.append(f"{where}: SCHEDULER_INDEX must come from the pod-index label")
        ref = _get(env.get("ENCRYPTION_KEY"), "valueFrom", "secretKeyRef")
        if ref is None or ref.get("name") != KEY_SECRET or ref.get("optional"):
            problems.append(f"{where}: ENCRYPTION_KEY must come from the Secret {KEY_SECRET}")
    return problems


def _check_key_only_in_scheduler(m: Manifests) -> list[str]:
    problems = []
    for w in m.workloads:
        if w.part == "scheduler":
            continue
        text = json.dumps(w.doc)
        if "ENCRYPTION_KEY" in text or f'"{KEY_SECRET}"' in text:
            problems.append(f"{w.kind}/{w.name}: only the scheduler may see ENCRYPTION_KEY")
    return problems


def _check_routing(m: Manifests) -> list[str]:
    problems: list[str] = []
    userstore, scheduler, gateway = m.part("userstore"), m.part("scheduler"), m.part("gateway")
    if userstore is None or scheduler is None or gateway is None:
        return ["the userstore, scheduler and gateway workloads must all be present"]
    port = m.env_value(userstore.container, "USERSTORE_PORT") or "50051"
    service = _get(userstore.doc, "spec", "serviceName")
    expected = ",".join(
        f"{userstore.name}-{index}.{service}:{port}" for index in range(userstore.replicas)
    )
    for w in (scheduler, gateway):
        actual = m.env_value(w.container, "USERSTORE_ADDRS")
        if actual != expected:
            problems.append(
                f"{w.kind}/{w.name}: USERSTORE_ADDRS is {actual!r}; with {userstore.replicas} "
                f"userstore replicas it must be {expected!r}"
            )
    replicas = m.env_value(scheduler.container, "SCHEDULER_REPLICAS")
    if replicas != str(scheduler.replicas):
        problems.append(
            f"StatefulSet/{scheduler.name}: SCHEDULER_REPLICAS is {replicas!r} but the "
            f"StatefulSet has {scheduler.replicas} replicas"
        )
    # The gateway routes a user's manual runs to the replica that polls them: it must list every
    # scheduler pod, in index order, through the StatefulSet's headless Service.
    scheduler_port = m.env_value(scheduler.container, "SCHEDULER_PORT") or "50052"
    scheduler_service = _get(scheduler.doc, "spec", "serviceName")
    expected_schedulers = ",".join(
        f"{scheduler.name}-{index}.{scheduler_service}:{scheduler_port}"
        for index in range(scheduler.replicas)
    )
    address = m.env_value(gateway.container, "SCHEDULER_ADDR") or ""
    if address != expected_schedulers:
        problems.append(
            f"gateway: SCHEDULER_ADDR is {address!r}; with {scheduler.replicas} scheduler "
            f"replicas it must be {expected_schedulers!r}"
        )
    return problems


def _peers(m: Manifests, rule: Doc) -> set[str]:
    """The callers an ingress rule lets in: part names, or '*' for anyone outside the app."""
    peers = rule.get("from")
    if not peers:
        return {"*"}
    allowed: set[str] = set()
    for peer in peers:
        if "ipBlock" in peer or "namespaceSelector" in peer:
            allowed.add("*")
            continue
        allowed |= {
            w.part for w in m.workloads if selector_matches(peer["podSelector"], w.pod_labels)
        }
    return allowed


def _check_network(m: Manifests) -> list[str]:
    problems: list[str] = []
    for w in m.workloads:
        policies = [
            p
            for p in m.of_kind("NetworkPolicy")
            if selector_matches(p["spec"].get("podSelector"), w.pod_labels)
            and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        ]
        if not policies:
            problems.append(f"{w.kind}/{w.name}: no NetworkPolicy restricts its ingress")
            continue
        expected = ALLOWED_CALLERS.get(w.part)
        if expected is None:
            continue
        callers: set[str] = set()
        port = w.container["ports"][0]["containerPort"]
        for policy in policies:
            for rule in policy["spec"].get("ingress", []):
                callers |= _peers(m, rule)
                ports = {p.get("port") for p in rule.get("ports", [])}
                if ports != {port}:
                    problems.append(
                        f"NetworkPolicy/{policy['metadata']['name']}: must open only port {port}"
                    )
        if callers != expected:
            problems.append(
                f"{w.kind}/{w.name}: reachable from {sorted(callers)}, must be {sorted(expected)}"
            )
    return problems


def _check_budgets(m: Manifests) -> list[str]:
    problems = []
    for w in m.workloads:
        budgets = [
            b
            for b in m.of_kind("PodDisruptionBudget")
            if selector_matches(b["spec"].get("selector"), w.pod_labels)
        ]
        if len(budgets) != 1:
            problems.append(f"{w.kind}/{w.name}: needs exactly one PodDisruptionBudget")
    return problems


def check_k8s(docs: Iterable[Doc]) -> list[str]:
    """Every broken rule in one rendered variant."""
    m = Manifests(docs)
    problems: list[str] = []
    for w in m.workloads:
        problems += _check_pod(w)
        problems += _check_part(m, w)
    problems += _check_key_only_in_scheduler(m)
    problems += _check_routing(m)
    problems += _check_network(m)
    problems += _check_budgets(m)
    return problems


def main(argv: list[str]) -> int:
    """Check every rendered variant named; print the problems; 0 when there are none."""
    if not argv:
        sys.stderr.write(__doc__ or "")
        return 2
    problems = []
    for name in argv:
        path = Path(name)
        problems += [f"{path}: {p}" for p in check_k8s(yaml.safe_load_all(path.read_text()))]
    for problem in problems:
        sys.stderr.write(problem + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
