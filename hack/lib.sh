# Shared settings for hack/ scripts: pinned versions, cache paths and a hermetic Go environment.
# Sourced, not executed.
HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HACK_DIR/.." && pwd)
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"
# shellcheck source=node.env
source "$HACK_DIR/node.env"

BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
# One folder per combination of versions, so a version bump never mixes binaries.
CONTROLPLANE_KEY="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
CONTROLPLANE_DIR="$BERTH_CACHE/$CONTROLPLANE_KEY"
CONTROLPLANE_BIN="$CONTROLPLANE_DIR/bin"
HELM_BIN="$BERTH_CACHE/helm-${HELM_VERSION}/bin"
FLUX_DIR="$BERTH_CACHE/flux_source-${FLUX_SOURCE_CONTROLLER_VERSION}_helm-${FLUX_HELM_CONTROLLER_VERSION}"
ARGOCD_DIR="$BERTH_CACHE/argocd-${ARGOCD_VERSION}_helm-${ARGOCD_HELM_VERSION}"
PROMETHEUS_CRD_DIR="$BERTH_CACHE/prometheus-operator-${PROMETHEUS_OPERATOR_VERSION}/crds"
CONTROLPLANE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd etcdctl kwok kwokctl)

# Module downloads and compiled packages are shared by every version folder.
export GOMODCACHE="$BERTH_CACHE/go/mod"
export GOCACHE="$BERTH_CACHE/go/build"
# The machine's Go is the toolchain; never let go.mod trigger a toolchain download.
export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false"
export CGO_ENABLED=0

log() { printf '[berth-hack] %s\n' "$*" >&2; }

# Polls COMMAND every 0.2 s until it succeeds; after SECONDS, says WHAT is missing and fails.
wait_for() { # wait_for WHAT SECONDS COMMAND...
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$what: not there after $seconds s"
  return 1
}

# k8s.io staging modules are versioned v0.X.Y for Kubernetes v1.X.Y.
staging_version() { printf 'v0.%s' "${KUBERNETES_VERSION#v1.}"; }

# The cluster kwokctl runs (hack/cluster.sh).
CLUSTER_NAME=${BERTH_CLUSTER_NAME:-berth}
export KWOK_WORKDIR="$BERTH_CACHE/kwok"
KWOK_CLUSTER_DIR="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"

# The real node (hack/node.sh): containerd built from the Go module proxy, and where its state lives.
CONTAINERD_BIN="$BERTH_CACHE/containerd-${CONTAINERD_VERSION}/bin"
NODE_DIR="$BERTH_CACHE/node"
CONTAINERD_SOCKET="$NODE_DIR/run/containerd.sock"
node_pause_image() { printf 'localhost/berth/pause:%s' "$KUBERNETES_VERSION"; }
# ctr against the node's containerd, in the namespace the kubelet's CRI uses.
node_ctr() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCKET" --namespace k8s.io "$@"; }
