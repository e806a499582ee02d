#!/usr/bin/env bash
# The local test cluster: a real control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) run by kwokctl's binary runtime, with kwok standing in for the GPU and CPU nodes, and one real
# node (hack/node.sh: kubelet, containerd, kube-proxy) that runs Berth's images.
#   hack/cluster.sh up          build what is missing, start the cluster, add the nodes (no-op if running)
#   hack/cluster.sh down        stop it and remove its processes and files
#   hack/cluster.sh kubeconfig  print the path of its kubeconfig
#   hack/cluster.sh status      exit 0 when it is running and answering
#   hack/cluster.sh show        print the cluster's version, address and nodes with their GPUs
#   hack/cluster.sh config      print the kwokctl configuration it starts the cluster with
#   hack/cluster.sh bin         print the folder of the control-plane binaries (kubectl among them)
# Everything binds to 127.0.0.1 (the real node to an address of its own on this machine) and lives under
# ~/.cache/berth/; ~/.kube/config is never touched.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CLUSTER_DIR=$KWOK_CLUSTER_DIR
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig.yaml"
# kwokctl's readiness checks call kubectl; make sure they call the one built for this version.
export PATH="$CONTROLPLANE_BIN:$PATH"

kubectl_() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }

running() {
  [ -f "$KUBECONFIG_PATH" ] && kubectl_ get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

# kwokctl's config: every binary given as a local path (a default would be a download URL), loopback
# only; then kwok's default node and pod stages from its module source plus Berth's failure stages.
# Giving any Stage replaces kwokctl's built-in set, which is why the defaults are listed here too.
write_config() {
  local kwok_src="$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage" f
  [ -d "$kwok_src" ] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  cat <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: $KUBERNETES_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  kubeApiserverBinary: $CONTROLPLANE_BIN/kube-apiserver
  kubeControllerManagerBinary: $CONTROLPLANE_BIN/kube-controller-manager
  kubeSchedulerBinary: $CONTROLPLANE_BIN/kube-scheduler
  kubectlBinary: $CONTROLPLANE_BIN/kubectl
  kwokControllerBinary: $CONTROLPLANE_BIN/kwok
  etcdBinary: $CONTROLPLANE_BIN/etcd
  etcdctlBinary: $CONTROLPLANE_BIN/etcdctl
# kwok manages only the nodes annotated as fake (hack/kwok/nodes.yaml): the real node's kubelet owns its own.
# The API server gets a Service range of its own (hack/node.env; the default /24 runs out at 254 Services), and
# a client certificate for kubelets and their addresses rather than names (nothing resolves the node's name),
# so logs, exec and port-forward reach the real node.
componentsPatches:
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
- name: kube-apiserver
  extraArgs:
  - {key: service-cluster-ip-range, value: $SERVICE_CIDR}
  - {key: kubelet-client-certificate, value: $CLUSTER_DIR/pki/admin.crt}
  - {key: kubelet-client-key, value: $CLUSTER_DIR/pki/admin.key}
  - {key: kubelet-preferred-address-types, value: "InternalIP,Hostname"}
YAML
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    printf -- '---\n'; cat "$kwok_src/$f"
  done
  printf -- '---\n'; cat "$HACK_DIR/kwok/stages.yaml"
}

up() {
  "$HACK_DIR/build-controlplane.sh" cluster
  if running; then
    log "cluster $CLUSTER_NAME: already running ($KUBECONFIG_PATH)"
    "$HACK_DIR/node.sh" up
    return
  fi
  local start=$SECONDS config="$BERTH_CACHE/kwokctl-$CLUSTER_NAME.yaml"
  # A half-started or stale cluster (machine rebooted, processes killed) is cleared first.
  [ -d "$CLUSTER_DIR" ] && kwokctl --name "$CLUSTER_NAME" delete cluster --kubeconfig "$CLUSTER_DIR/kubeconfig.yaml" >/dev/null 2>&1 || true
  write_config >"$config"
  log "cluster $CLUSTER_NAME: starting"
  kwokctl --name "$CLUSTER_NAME" create cluster --config "$config" --kubeconfig "" --wait 3m >&2
  kubectl_ apply -f "$HACK_DIR/kwok/nodes.yaml" >&2
  kubectl_ wait --for=condition=Ready node --all --timeout=120s >&2
  # The scheduler needs a default namespace's ServiceAccount before pods can be created there.
  until kubectl_ get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done
  log "cluster $CLUSTER_NAME: ready in $((SECONDS - start)) s; kubeconfig: $KUBECONFIG_PATH"
  "$HACK_DIR/node.sh" up
}

down() {
  local pids="" pid tries
  "$HACK_DIR/node.sh" down
  if [ -d "$CLUSTER_DIR" ]; then
    for pid in "$CLUSTER_DIR"/pids/*.pid; do [ -f "$pid" ] && pids="$pids $(<"$pid")"; done
    kwokctl --name "$CLUSTER_NAME" delete cluster --kubeconfig "$CLUSTER_DIR/kubeconfig.yaml" >&2
  fi
  # kwokctl signals the processes and returns; "down" promises none are left, so wait for them.
  for pid in $pids; do
    for tries in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  log "cluster $CLUSTER_NAME: down"
}

show() {
  running || { log "cluster $CLUSTER_NAME: not running (hack/cluster.sh up)"; exit 1; }
  echo "Kubernetes $(kubectl_ version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1) at $(kubectl_ config view -o jsonpath='{.clusters[0].cluster.server}')"
  kubectl_ get nodes -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,GPUS:.status.allocatable.nvidia\.com/gpu,CPU:.status.allocatable.cpu,MEMORY:.status.allocatable.memory'
  echo
  echo "Use it:  kubectl --kubeconfig $KUBECONFIG_PATH get nodes"
  echo "Stop it: make cluster-down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kubeconfig) echo "$KUBECONFIG_PATH" ;;
  status) running ;;
  bin) echo "$CONTROLPLANE_BIN" ;;
  helm) echo "$HELM_BIN/helm" ;;
  flux) echo "$FLUX_DIR" ;;
  argocd) echo "$ARGOCD_DIR" ;;
  prometheus-crds) echo "$PROMETHEUS_CRD_DIR" ;;
  show) show ;;
  config) write_config ;;
  *) echo "usage: $0 up|down|kubeconfig|status|bin|helm|flux|argocd|prometheus-crds|show|config" >&2; exit 2 ;;
esac
