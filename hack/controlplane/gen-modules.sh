#!/usr/bin/env bash
# Regenerates the Go wrapper modules in hack/controlplane/ from the versions in hack/versions.env.
# Run it after changing a version there, then commit the resulting go.mod and go.sum files.
#
# Why wrapper modules: k8s.io/kubernetes requires its staging modules (k8s.io/api, client-go, ...) at
# v0.0.0 and redirects them with replace directives, which `go install pkg@version` refuses. A module of
# our own that replaces each one with its published v0.X.Y can build the commands. etcd's server
# module has replace directives too, so it gets a wrapper as well.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

gen_kubernetes() {
  local dir="$HACK_DIR/controlplane/kubernetes" gomod staging
  log "generating the Kubernetes wrapper module for $KUBERNETES_VERSION"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || { log "no go.mod found for k8s.io/kubernetes@$KUBERNETES_VERSION"; exit 1; }
  staging=$(staging_version)
  (
    cd "$dir"
    rm -f go.mod go.sum
    go mod init berth.dev/hack/controlplane/kubernetes >/dev/null 2>&1
    go mod edit -go=1.26.0
    # The staging list changes between minors, so read it from the tag's own go.mod; one missing
    # replace fails the build with "unknown revision v0.0.0".
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod" | sort -u | while read -r mod; do
      go mod edit -replace="$mod=$mod@$staging"
    done
    go get "k8s.io/kubernetes@$KUBERNETES_VERSION"
    go mod tidy
  )
}

gen_etcd() {
  local dir="$HACK_DIR/controlplane/etcd"
  log "generating the etcd wrapper module for $ETCD_VERSION"
  (
    cd "$dir"
    rm -f go.mod go.sum
    go mod init berth.dev/hack/controlplane/etcd >/dev/null 2>&1
    go mod edit -go=1.26.0
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION"
    go mod tidy
  )
}

case "${1:-all}" in
  kubernetes) gen_kubernetes ;;
  etcd) gen_etcd ;;
  all) gen_kubernetes; gen_etcd ;;
  *) echo "usage: $0 [kubernetes|etcd|all]" >&2; exit 2 ;;
esac
