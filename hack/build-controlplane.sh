#!/usr/bin/env bash
# Builds the local test control plane from Go modules into ~/.cache/berth/<versions>/bin:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, and the real node's kubelet and kube-proxy
# (version-stamped), etcd, etcdctl,
# kwok and kwokctl; containerd for the real node into ~/.cache/berth/containerd-<version>/bin; helm (for the chart's tests) into ~/.cache/berth/helm-<version>/bin; and Flux's
# source-controller and helm-controller with their CRDs into ~/.cache/berth/flux_<versions>/, and Argo CD (with a
# Redis stand-in and the helm 3 it runs) into ~/.cache/berth/argocd_<versions>/, for the GitOps tests; and the
# Prometheus Operator's monitor CRDs into ~/.cache/berth/prometheus-operator-<version>/crds.
# `cluster` builds only the first group (what a local cluster needs), `helm` only helm.
# Idempotent: a group whose binaries exist and answer with the pinned version is only checked, so a warm
# run takes a second.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mkdir -p "$CONTROLPLANE_BIN"

have() { # have BINARY EXPECTED_VERSION_SUBSTRING VERSION_ARGS...
  local bin="$CONTROLPLANE_BIN/$1" want=$2 out; shift 2
  # Capture first: with pipefail, grep -q closing the pipe early would fail the check at random.
  [ -x "$bin" ] && out=$("$bin" "$@" 2>/dev/null) && grep -qF -- "$want" <<<"$out"
}

# The wrapper modules are committed; a pin change without regenerating them would silently build
# the old version, so regenerate when the pin and the go.mod disagree.
module_pinned() { # module_pinned DIR MODULE VERSION
  (cd "$HACK_DIR/controlplane/$1" && [ -f go.mod ] && [ "$(go list -m -f '{{.Version}}' "$2")" = "$3" ])
}

build_kubernetes() {
  if have kube-apiserver "$KUBERNETES_VERSION" --version && have kube-controller-manager "$KUBERNETES_VERSION" --version \
    && have kube-scheduler "$KUBERNETES_VERSION" --version && have kubectl "$KUBERNETES_VERSION" version --client \
    && have kubelet "$KUBERNETES_VERSION" --version && have kube-proxy "$KUBERNETES_VERSION" --version; then
    log "kubernetes $KUBERNETES_VERSION: up to date"
    return
  fi
  module_pinned kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION" || "$HACK_DIR/controlplane/gen-modules.sh" kubernetes
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local stamp="-X PKG.gitVersion=$KUBERNETES_VERSION -X PKG.gitMajor=1 -X PKG.gitMinor=$minor"
  stamp="$stamp -X PKG.gitTreeState=clean -X PKG.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # Unstamped binaries report v0.0.0-master, which breaks Helm's kubeVersion checks and kubectl's
  # skew check; both version packages carry the value.
  local ldflags="-s -w ${stamp//PKG/k8s.io/client-go/pkg/version} ${stamp//PKG/k8s.io/component-base/version}"
  log "kubernetes $KUBERNETES_VERSION: building (cold: tens of minutes on 2 cores)"
  (
    cd "$HACK_DIR/controlplane/kubernetes"
    go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$CONTROLPLANE_BIN/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  )
}

build_etcd() {
  if have etcd "${ETCD_VERSION#v}" --version && have etcdctl "${ETCD_VERSION#v}" version; then
    log "etcd $ETCD_VERSION: up to date"
    return
  fi
  module_pinned etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" || "$HACK_DIR/controlplane/gen-modules.sh" etcd
  log "etcd $ETCD_VERSION: building"
  (
    cd "$HACK_DIR/controlplane/etcd"
    go build -trimpath -ldflags "-s -w" -o "$CONTROLPLANE_BIN/etcd" go.etcd.io/etcd/server/v3
    go build -trimpath -ldflags "-s -w" -o "$CONTROLPLANE_BIN/etcdctl" go.etcd.io/etcd/etcdctl/v3
  )
}

build_kwok() {
  if have kwok "$KWOK_VERSION" --version && have kwokctl "$KWOK_VERSION" --version; then
    log "kwok $KWOK_VERSION: up to date"
    return
  fi
  log "kwok $KWOK_VERSION: building"
  # kwok's go.mod has no replace directives, so go install works; stamp the version it reports.
  GOBIN="$CONTROLPLANE_BIN" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

# The real node's container runtime. containerd's go.mod has no replace directives, so go install works; the
# storage drivers that need cgo are left out (the node uses overlayfs).
build_containerd() {
  if [ -x "$CONTAINERD_BIN/containerd-shim-runc-v2" ] && [ -x "$CONTAINERD_BIN/ctr" ] \
    && "$CONTAINERD_BIN/containerd" --version 2>/dev/null | grep -qF "$CONTAINERD_VERSION"; then
    log "containerd $CONTAINERD_VERSION: up to date"
    return
  fi
  log "containerd $CONTAINERD_VERSION: building"
  mkdir -p "$CONTAINERD_BIN"
  local module=github.com/containerd/containerd/v2
  GOBIN="$CONTAINERD_BIN" go install -trimpath -tags no_btrfs,no_devmapper,no_zfs \
    -ldflags "-s -w -X $module/version.Version=$CONTAINERD_VERSION" "$module/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "$module/cmd/ctr@$CONTAINERD_VERSION" "$module/cmd/containerd@$CONTAINERD_VERSION"
}

build_helm() {
  if [ -x "$HELM_BIN/helm" ] && "$HELM_BIN/helm" version --short 2>/dev/null | grep -qF "$HELM_VERSION"; then
    log "helm $HELM_VERSION: up to date"
    return
  fi
  log "helm $HELM_VERSION: building"
  mkdir -p "$HELM_BIN"
  GOBIN="$HELM_BIN" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}

# Flux's and Argo CD's controllers pin dependencies with replace directives, which `go install pkg@version`
# refuses: each is built from a wrapper module generated in the cache from the upstream go.mod (same
# requires and replaces) and its go.sum (the checksum database does not serve every pseudo-version they pin).
# Replaces onto local paths point into the upstream repository, which the module zip does not carry; the
# published versions the go.mod requires stand in for them.
build_wrapped() { # build_wrapped DIR MODULE VERSION LDFLAGS OUTPUT=PACKAGE...
  local dir=$1 module=$2 version=$3 ldflags=$4 target local_replaces
  shift 4
  mkdir -p "$dir"
  go mod download "$module@$version"
  install -m 644 "$GOMODCACHE/$module@$version/go.mod" "$dir/go.mod"
  install -m 644 "$GOMODCACHE/$module@$version/go.sum" "$dir/go.sum"
  (
    cd "$dir"
    local_replaces=$(go mod edit -json | python3 -c 'import json, sys
print(" ".join("-dropreplace=" + r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or [] if not r["New"].get("Version")))')
    # shellcheck disable=SC2086 # one flag per word
    go mod edit -module "berth.dev/hack/wrapped" -require "$module@$version" $local_replaces
    go get "$module@$version"
    for target in "$@"; do
      go build -trimpath -ldflags "-s -w $ldflags" -o "${target%%=*}.partial" "${target#*=}"
      mv "${target%%=*}.partial" "${target%%=*}"
    done
  )
}

build_flux_controller() { # build_flux_controller NAME VERSION
  local name=$1 version=$2
  if [ -x "$FLUX_DIR/bin/$name" ]; then
    log "flux $name $version: up to date"
    return
  fi
  log "flux $name $version: building"
  mkdir -p "$FLUX_DIR/bin" "$FLUX_DIR/crds"
  go mod download "github.com/fluxcd/$name@$version"
  install -m 644 "$GOMODCACHE/github.com/fluxcd/$name@$version"/config/crd/bases/*.yaml "$FLUX_DIR/crds/"
  build_wrapped "$FLUX_DIR/src/$name" "github.com/fluxcd/$name" "$version" "" "$FLUX_DIR/bin/$name=github.com/fluxcd/$name"
}

build_flux() {
  build_flux_controller source-controller "$FLUX_SOURCE_CONTROLLER_VERSION"
  build_flux_controller helm-controller "$FLUX_HELM_CONTROLLER_VERSION"
}

# Argo CD's one binary (it acts as the component its ARGOCD_BINARY_NAME names), a Redis stand-in (miniredis,
# the in-memory Redis Argo CD's own core mode runs, already in its module graph) and the helm 3 its
# repo-server shells out to (the version Argo CD's images bundle).
build_argocd() {
  local module=github.com/argoproj/argo-cd/v3
  local out
  if [ -x "$ARGOCD_DIR/bin/redis" ] && [ -x "$ARGOCD_DIR/bin/helm" ] \
    && out=$(ARGOCD_BINARY_NAME=argocd "$ARGOCD_DIR/bin/argocd" version --client --short 2>/dev/null) \
    && grep -qF "$ARGOCD_VERSION" <<<"$out"; then
    log "argocd $ARGOCD_VERSION: up to date"
    return
  fi
  log "argocd $ARGOCD_VERSION: building"
  mkdir -p "$ARGOCD_DIR/bin" "$ARGOCD_DIR/crds" "$ARGOCD_DIR/src/redis"
  install -m 644 "$HACK_DIR/argocd-redis/main.go" "$ARGOCD_DIR/src/redis/main.go"
  GOBIN="$ARGOCD_DIR/bin" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$ARGOCD_HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$ARGOCD_HELM_VERSION"
  go mod download "$module@$ARGOCD_VERSION"
  install -m 644 "$GOMODCACHE/$module@$ARGOCD_VERSION"/manifests/crds/{application,appproject}-crd.yaml "$ARGOCD_DIR/crds/"
  # The binary that the up-to-date check asks comes last.
  build_wrapped "$ARGOCD_DIR/src" "$module" "$ARGOCD_VERSION" "-X $module/common.version=${ARGOCD_VERSION#v}" \
    "$ARGOCD_DIR/bin/redis=./redis" "$ARGOCD_DIR/bin/argocd=$module/cmd"
}

# The Prometheus Operator's ServiceMonitor and PodMonitor CRDs (no binary): the chart's monitors are applied
# against them. Its module carries them as files; nothing of it is built.
fetch_prometheus_crds() {
  local module=github.com/prometheus-operator/prometheus-operator
  if [ -f "$PROMETHEUS_CRD_DIR/monitoring.coreos.com_servicemonitors.yaml" ]; then
    log "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION: up to date"
    return
  fi
  mkdir -p "$PROMETHEUS_CRD_DIR"
  go mod download "$module@$PROMETHEUS_OPERATOR_VERSION"
  install -m 644 "$GOMODCACHE/$module@$PROMETHEUS_OPERATOR_VERSION"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,podmonitors}.yaml \
    "$PROMETHEUS_CRD_DIR/"
}

start=$SECONDS
if [ "${1:-}" = helm ]; then  # only helm: enough for the chart's cluster-free tests
  build_helm
  exit 0
fi
build_etcd
build_kwok
build_kubernetes
build_containerd
if [ "${1:-}" = cluster ]; then  # only the cluster: enough for the demo and `make cluster-up`
  log "control plane binaries ready in $CONTROLPLANE_BIN ($((SECONDS - start)) s)"
  exit 0
fi
build_helm
build_flux
build_argocd
fetch_prometheus_crds
log "control plane binaries ready in $CONTROLPLANE_BIN, helm in $HELM_BIN, flux in $FLUX_DIR, argocd in $ARGOCD_DIR, Prometheus Operator CRDs in $PROMETHEUS_CRD_DIR ($((SECONDS - start)) s)"
