#!/usr/bin/env bash
# Builds the local test control plane from Go modules into ~/.cache/berth/<versions>/bin:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (version-stamped), etcd, etcdctl,
# kwok and kwokctl; helm (for the chart's tests) into ~/.cache/berth/helm-<version>/bin; and Flux's
# source-controller and helm-controller with their CRDs (for the GitOps test) into ~/.cache/berth/flux_<versions>/.
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
    && have kube-scheduler "$KUBERNETES_VERSION" --version && have kubectl "$KUBERNETES_VERSION" version --client; then
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
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
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

# Flux's controllers pin some dependencies with replace directives, which `go install pkg@version` refuses:
# each is built from a small wrapper module repeating them. The controller's own go.sum comes along, since
# the checksum database does not serve every pseudo-version they pin.
build_flux_controller() { # build_flux_controller NAME VERSION GO.MOD-REPLACE-LINES...
  local name=$1 version=$2 dir="$FLUX_DIR/src/$1"
  shift 2
  if [ -x "$FLUX_DIR/bin/$name" ]; then
    log "flux $name $version: up to date"
    return
  fi
  log "flux $name $version: building"
  mkdir -p "$dir" "$FLUX_DIR/bin" "$FLUX_DIR/crds"
  { printf 'module berth.dev/hack/flux-%s\n\ngo 1.25.0\n\n' "$name"; printf '%s\n' "$@"; } >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/fluxcd/%s"\n' "$name" >"$dir/tools.go"
  (
    cd "$dir"
    go mod download "github.com/fluxcd/$name@$version"
    install -m 644 "$GOMODCACHE/github.com/fluxcd/$name@$version/go.sum" go.sum
    go get "github.com/fluxcd/$name@$version"
    go build -trimpath -ldflags "-s -w" -o "$FLUX_DIR/bin/$name.partial" "github.com/fluxcd/$name"
  )
  install -m 644 "$GOMODCACHE/github.com/fluxcd/$name@$version"/config/crd/bases/*.yaml "$FLUX_DIR/crds/"
  mv "$FLUX_DIR/bin/$name.partial" "$FLUX_DIR/bin/$name"
}

build_flux() {
  build_flux_controller source-controller "$FLUX_SOURCE_CONTROLLER_VERSION" \
    "replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be"
  build_flux_controller helm-controller "$FLUX_HELM_CONTROLLER_VERSION" \
    "replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20231025023718-d50d2fec9c98" \
    "replace sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.20.1" \
    "replace sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.20.1"
}

start=$SECONDS
if [ "${1:-}" = helm ]; then  # only helm: enough for the chart's cluster-free tests
  build_helm
  exit 0
fi
build_etcd
build_kwok
build_kubernetes
build_helm
build_flux
log "control plane binaries ready in $CONTROLPLANE_BIN, helm in $HELM_BIN, flux in $FLUX_DIR ($((SECONDS - start)) s)"
